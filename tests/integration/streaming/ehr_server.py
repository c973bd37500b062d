"""A small EHR FHIR server for the Subscription tests: real HTTP (uvicorn in a thread).

It serves what ingest's EHR client uses and checks it the way an EHR would:
``.well-known/smart-configuration``, a token endpoint verifying the SMART client
assertion against the registered public JWKS (alg, kid, iss/sub, aud, exp, jti),
reads, searches with ``_count`` paging (absolute ``next`` links) and the Backport IG's
``Subscription/[id]/$events``. Faults are switched on per test: ``refuse_tokens`` (401
at the token endpoint), ``hang`` (requests wait until the test ends, so the client's
timeout fires), ``foreign_next`` (a next link to another server).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from readmit.embedded.services import free_port

Resource = dict[str, Any]


def _rewrite(node: Any, urls: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (urls.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, urls))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, urls) for v in node]
    return node


def stored_resources(bundle: Resource) -> list[Resource]:
    """A pushed Bundle's resources as an EHR stores them: each with an id, ``urn:uuid``
    references rewritten to relative ``Type/id``."""
    urls: dict[str, str] = {}
    out = []
    for entry in bundle["entry"]:
        resource = dict(entry["resource"])
        resource.setdefault("id", uuid.uuid4().hex[:16])
        urls[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        out.append(resource)
    return [_rewrite(r, urls) for r in out]


class EhrServer:
    def __init__(self, jwks: dict[str, Any], client_id: str, token_ttl: int = 300) -> None:
        self.jwks = jwks
        self.client_id = client_id
        self.token_ttl = token_ttl
        self.resources: dict[str, Resource] = {}
        self.events: dict[int, str] = {}  # event number -> focus "Type/id" ($events)
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.searches: Counter[str] = Counter()  # resource type -> pages served
        self.requests: list[str] = []
        self.refuse_tokens = False
        self.foreign_next = False
        self.hang = False
        self.port = free_port()
        self.base_root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.base_root}/fhir"
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen_jti: set[str] = set()

    def add(self, resources: list[Resource]) -> None:
        for r in resources:
            self.resources[f"{r['resourceType']}/{r['id']}"] = r

    # --- routes ------------------------------------------------------------------------
    async def _gate(self, request: Request) -> None:
        self.requests.append(request.url.path)
        if self.hang and self._release is not None:
            await self._release.wait()

    async def smart_configuration(self, request: Request) -> Response:
        await self._gate(request)
        return JSONResponse(
            {
                "token_endpoint": f"{self.base_root}/auth/token",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "grant_types_supported": ["client_credentials"],
            }
        )

    async def token(self, request: Request) -> Response:
        await self._gate(request)
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if self.refuse_tokens:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        assertion = str(form.get("client_assertion", ""))
        header = jwt.get_unverified_header(assertion)
        keys = [k for k in self.jwks["keys"] if k["kid"] == header.get("kid")]
        if form.get("grant_type") != "client_credentials" or not keys:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        try:
            claims = jwt.decode(
                assertion,
                jwt.PyJWK(keys[0]).key,
                algorithms=[header["alg"]],
                audience=f"{self.base_root}/auth/token",
                issuer=self.client_id,
                options={"require": ["exp", "jti", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return JSONResponse({"error": "invalid_client", "detail": str(exc)}, status_code=401)
        if claims["sub"] != self.client_id or claims["jti"] in self._seen_jti:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self._seen_jti.add(claims["jti"])
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl}
        )

    def _authorized(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    async def read(self, request: Request) -> Response:
        await self._gate(request)
        if not self._authorized(request):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        key = f"{request.path_params['rtype']}/{request.path_params['rid']}"
        if key not in self.resources:
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        return JSONResponse(self.resources[key], media_type="application/fhir+json")

    async def search(self, request: Request) -> Response:
        await self._gate(request)
        if not self._authorized(request):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        rtype = request.path_params["rtype"]
        params = dict(request.query_params)
        count, offset = int(params.pop("_count", "50")), int(params.pop("_offset", "0"))
        hits = [
            r
            for r in self.resources.values()
            if r["resourceType"] == rtype
            and all(
                (r.get("subject" if name == "patient" else name) or {}).get("reference") == value
                for name, value in params.items()
            )
        ]
        self.searches[rtype] += 1
        page = hits[offset : offset + count]
        links = []
        if offset + count < len(hits):
            query = "&".join(f"{k}={v}" for k, v in params.items())
            root = "http://elsewhere.example/fhir" if self.foreign_next else self.base
            links.append(
                {
                    "relation": "next",
                    "url": f"{root}/{rtype}?{query}&_count={count}&_offset={offset + count}",
                }
            )
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(hits),
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{self.base}/{rtype}/{r['id']}",
                        "resource": r,
                        "search": {"mode": "match"},
                    }
                    for r in page
                ],
            },
            media_type="application/fhir+json",
        )

    async def subscription_events(self, request: Request) -> Response:
        """Backport IG $events: an id-only query-event Bundle for the asked numbers."""
        await self._gate(request)
        if not self._authorized(request):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        since = int(request.query_params["eventsSinceNumber"])
        until = int(request.query_params["eventsUntilNumber"])
        numbers = [n for n in sorted(self.events) if since <= n <= until]
        status = {
            "resourceType": "SubscriptionStatus",
            "status": "active",
            "type": "query-event",
            "subscription": {"reference": f"Subscription/{request.path_params['sid']}"},
            "notificationEvent": [
                {"eventNumber": str(n), "focus": {"reference": self.events[n]}} for n in numbers
            ],
        }
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "subscription-notification",
                "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": status}],
            },
            media_type="application/fhir+json",
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", self.smart_configuration),
                Route("/auth/token", self.token, methods=["POST"]),
                Route("/fhir/Subscription/{sid}/$events", self.subscription_events),
                Route("/fhir/{rtype}/{rid}", self.read),
                Route("/fhir/{rtype}", self.search),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[EhrServer]:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._release = asyncio.Event()
            started.set()
            loop.run_until_complete(server.serve())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.wait(10)
        try:
            from stream_support import wait_for

            wait_for(lambda: server.started, 20, "the EHR server to listen")
            yield self
        finally:
            if self._loop is not None and self._release is not None:
                self._loop.call_soon_threadsafe(self._release.set)
            server.should_exit = True
            thread.join(10)
