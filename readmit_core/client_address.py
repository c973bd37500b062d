"""Which address a request came from, behind the reverse proxies (READMIT_LOGIN_PROXY_HOPS).

One rule for every place that records or counts a client address: the login lockout,
the web's access audit (HTTP and WebSocket) and ingest's audit of score reads. Behind
the proxy the TCP peer is the proxy itself; with ``hops`` = n the address n entries from
the right of X-Forwarded-For (the one the nearest trusted proxy appended) is the client.
Entries further left are the client's to forge and are never read.
"""

from __future__ import annotations


def client_address(peer: str, forwarded_for: str, hops: int) -> str:
    """The client's address: the peer when ``hops`` is 0 or the chain is too short."""
    if hops == 0:
        return peer
    chain = [a.strip() for a in forwarded_for.split(",")]
    chain = [a for a in chain if a]
    return chain[-hops] if len(chain) >= hops else peer
