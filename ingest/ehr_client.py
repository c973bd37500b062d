"""Reading the EHR's FHIR server as a SMART Backend Services client.

Id-only and empty Subscription notifications name resources without carrying them;
ingest fetches them from the notifying EHR. That client is deliberately narrow:

* **Only configured servers.** Every URL is checked against READMIT_EHR_FHIR_BASE_URLS
  before a request is made; a reference, a search ``next`` link or a redirect that leads
  elsewhere is refused (:class:`EhrRefused`), never followed.
* **SMART Backend Services** (client-credentials with a ``private_key_jwt`` assertion
  signed by our key, ``ingest.ehr_keys``): the token endpoint is discovered from the
  base's ``.well-known/smart-configuration``; the access token is cached per base until
  shortly before ``expires_in``; a 401 on a cached token gets one fresh token.
* **Bounded.** Timeouts on every request, a bounded number of retries with doubling
  back-off (tenacity) for what a retry can fix (timeouts, connection errors, 429, 5xx),
  responses no larger than READMIT_MAX_REQUEST_BYTES, searches with ``_count`` and at most
  READMIT_EHR_MAX_PAGES pages.

Failures a later retry can fix (the EHR down or slow, our credentials refused) raise
:class:`EhrUnavailable`: the notification is answered 503 so the EHR sends it again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import orjson
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fhir_mappings import FHIR_JSON
from ingest import metrics
from ingest.ehr_keys import SigningKey, load_signing_key
from readmit_core.errors import ReadmitError
from readmit_core.settings import Settings

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART: the assertion's exp at most five minutes ahead; four leaves room for clock skew
ASSERTION_LIFETIME_S = 240
# a token is renewed this long before the EHR says it expires (capped at half its life)
TOKEN_RENEW_MARGIN_S = 30
MAX_BACKOFF_S = 4.0
# FHIR's id rule: also what keeps a notified id from smuggling a path or query into a URL
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class EhrError(ReadmitError):
    """A fetch from the EHR's FHIR server did not give what the notification named;
    ``ehr_status`` is the EHR's HTTP status when it answered at all."""

    status = 502
    issue_code = "exception"

    def __init__(self, url: str, reason: str, ehr_status: int | None = None) -> None:
        super().__init__(f"{reason} ({url})" if url else reason)
        self.url = url
        self.reason = reason
        self.ehr_status = ehr_status


class EhrUnavailable(EhrError):
    """The EHR did not answer usefully for a reason a later retry can fix: down,
    timed out, 5xx/429, or our token refused (401/403: registration or scopes)."""

    status = 503
    issue_code = "transient"


class EhrRefused(EhrError):
    """Something a retry cannot fix: a server or link outside the allowlist, a resource
    the EHR says does not exist, or an answer that is not the FHIR asked for."""

    status = 422
    issue_code = "processing"


@dataclass(frozen=True)
class Located:
    """A reference resolved against the allowlist: its base, type and id."""

    base: str
    rtype: str
    rid: str

    @property
    def key(self) -> str:
        return f"{self.rtype}/{self.rid}"


@dataclass
class _Token:
    value: str
    renew_at: float


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes


class EhrClient:
    """One per ingest process; thread-safe (notifications are handled in a thread pool)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bases = settings.ehr_base_urls
        self._http = httpx.Client(
            timeout=httpx.Timeout(settings.ehr_timeout_seconds),
            follow_redirects=False,  # a redirect could lead outside the allowlist
            headers={"Accept": FHIR_JSON},
        )
        self._key: SigningKey | None = None
        self._tokens: dict[str, _Token] = {}
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # --- the allowlist -------------------------------------------------------------------
    def base_of(self, url: str) -> str | None:
        """The configured base an absolute URL lies under, or None."""
        for base in self.bases:
            if url == base or url.startswith(base + "/"):
                return base
        return None

    def locate(self, reference: str, base: str) -> Located:
        """``Type/id`` relative to ``base``, or an absolute URL under ``base``; anything
        else (another server, a contained or urn reference, a search URL) is refused."""
        if "://" in reference:
            if self.base_of(reference) != base:
                raise EhrRefused(reference, "reference names a server that is not the notifier's")
            reference = reference[len(base) + 1 :]
        path = reference.split("/_history/")[0]
        rtype, _, rid = path.partition("/")
        if not rtype[:1].isupper() or not rtype.isalnum() or not FHIR_ID.fullmatch(rid):
            raise EhrRefused(reference, "not a literal Type/id reference")
        return Located(base, rtype, rid)

    # --- FHIR reads ----------------------------------------------------------------------
    def read(self, where: Located) -> dict[str, Any]:
        """GET [base]/Type/id; the answer must be that resource."""
        resource = self._get_json(where.base, f"{where.base}/{where.key}", None)
        if resource.get("resourceType") != where.rtype or resource.get("id") != where.rid:
            raise EhrRefused(f"{where.base}/{where.key}", "the EHR answered another resource")
        return resource

    def search(self, base: str, rtype: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """GET [base]/Type?params&_count=N, following ``next`` links (same base only) for
        at most READMIT_EHR_MAX_PAGES pages; ``include``/``outcome`` entries are skipped."""
        url: str | None = f"{base}/{rtype}"
        query: dict[str, str] | None = {**params, "_count": str(self.settings.ehr_page_size)}
        found: list[dict[str, Any]] = []
        for _ in range(self.settings.ehr_max_pages):
            assert url is not None
            page = self._get_json(base, url, query)
            if page.get("resourceType") != "Bundle" or page.get("type") != "searchset":
                raise EhrRefused(url, "a search was not answered with a searchset Bundle")
            for entry in page.get("entry") or ():
                if not isinstance(entry, dict):
                    continue
                resource, mode = entry.get("resource"), (entry.get("search") or {}).get("mode")
                if (
                    isinstance(resource, dict)
                    and resource.get("resourceType") == rtype
                    and mode in (None, "match")
                ):
                    found.append(resource)
            url = next(
                (
                    link.get("url")
                    for link in page.get("link") or ()
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
            if not url:
                return found
            if self.base_of(url) != base:
                raise EhrRefused(url, "a search's next link leads outside the EHR's base")
            query = None  # the next link carries the whole query
        metrics.EHR_SEARCHES_TRUNCATED.inc()
        log.warning(
            "EHR search truncated at the page limit",
            extra={"resource_type": rtype, "pages": self.settings.ehr_max_pages},
        )
        return found

    def call(self, base: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        """GET [base]/path?params (an operation such as ``Subscription/x/$events``)."""
        return self._get_json(base, f"{base}/{path}", params)

    def _get_json(self, base: str, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        answer = self._authorized_get(base, url, params)
        if answer.status in (404, 410):
            raise EhrRefused(url, f"the EHR has no such resource ({answer.status})", answer.status)
        if answer.status in (401, 403):
            metrics.EHR_FETCH_FAILURES.labels("unauthorized").inc()
            raise EhrUnavailable(url, f"the EHR refused our token ({answer.status})", answer.status)
        if 300 <= answer.status < 400:
            raise EhrRefused(url, f"the EHR redirected ({answer.status}); not followed")
        if answer.status != 200:
            metrics.EHR_FETCH_FAILURES.labels("status").inc()
            raise EhrUnavailable(url, f"the EHR answered {answer.status}", answer.status)
        return _json_object(url, answer.body)

    def _authorized_get(self, base: str, url: str, params: dict[str, str] | None) -> _Answer:
        answer = self._send("GET", url, params=params, headers=self._auth(base, fresh=False))
        if answer.status == 401:  # revoked or expired early: one fresh token, then give up
            answer = self._send("GET", url, params=params, headers=self._auth(base, fresh=True))
        return answer

    # --- SMART Backend Services ----------------------------------------------------------
    def _auth(self, base: str, *, fresh: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token(base, fresh=fresh)}"}

    def _token(self, base: str, *, fresh: bool) -> str:
        """The cached access token for ``base``, or a new one from its token endpoint.
        Under a lock: concurrent notifications share one token request."""
        with self._lock:
            cached = self._tokens.get(base)
            if cached is not None and not fresh and time.time() < cached.renew_at:
                return cached.value
            endpoint = self._token_endpoint(base)
            answer = self._send(
                "POST",
                endpoint,
                data={
                    "grant_type": "client_credentials",
                    "scope": self.settings.ehr_scopes,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self._assertion(endpoint),
                },
                headers={"Accept": "application/json"},
            )
            metrics.EHR_TOKEN_REQUESTS.labels(str(answer.status)).inc()
            if answer.status != 200:
                self._endpoints.pop(base, None)  # discover again next time
                raise EhrUnavailable(
                    endpoint, f"the EHR's token endpoint answered {answer.status}", answer.status
                )
            body = _json_object(endpoint, answer.body)
            value, lifetime = body.get("access_token"), body.get("expires_in", 300)
            if not isinstance(value, str) or not value or not isinstance(lifetime, int):
                raise EhrUnavailable(endpoint, "the token response has no access_token/expires_in")
            margin = min(TOKEN_RENEW_MARGIN_S, lifetime / 2)
            self._tokens[base] = _Token(value, time.time() + lifetime - margin)
            return value

    def _token_endpoint(self, base: str) -> str:
        """``token_endpoint`` of [base]/.well-known/smart-configuration (cached).

        It may live on another host (an authorization server), but never on a weaker
        scheme than the base: an https base never sends our assertion over http."""
        known = self._endpoints.get(base)
        if known is not None:
            return known
        url = f"{base}/.well-known/smart-configuration"
        answer = self._send("GET", url, headers={"Accept": "application/json"})
        if answer.status != 200:
            raise EhrUnavailable(url, f"SMART discovery answered {answer.status}", answer.status)
        endpoint = _json_object(url, answer.body).get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise EhrUnavailable(url, "SMART discovery names no token_endpoint")
        scheme = urlsplit(endpoint).scheme
        if scheme != "https" and scheme != urlsplit(base).scheme:
            raise EhrRefused(endpoint, "the token endpoint is not https")
        self._endpoints[base] = endpoint
        return endpoint

    def _assertion(self, endpoint: str) -> str:
        if self._key is None:
            self._key = load_signing_key(self.settings.ehr_private_key_file)
        now = int(time.time())
        client_id = self.settings.ehr_client_id
        return jwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": endpoint,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME_S,
                "jti": uuid.uuid4().hex,
            },
            self._key.private,
            algorithm=self._key.algorithm,
            headers={"kid": self._key.kid, "typ": "JWT"},
        )

    # --- HTTP with timeouts, retries and a size bound -------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> _Answer:
        retrying = Retrying(
            stop=stop_after_attempt(1 + self.settings.ehr_retries),
            wait=wait_exponential(
                multiplier=self.settings.ehr_retry_backoff_seconds, max=MAX_BACKOFF_S
            ),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, url, **kwargs)
        except _Transient as exc:
            metrics.EHR_FETCH_FAILURES.labels(exc.kind).inc()
            raise EhrUnavailable(url, exc.reason, exc.ehr_status) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _once(self, method: str, url: str, **kwargs: Any) -> _Answer:
        limit = self.settings.max_request_bytes
        try:
            with self._http.stream(method, url, **kwargs) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise EhrRefused(url, f"the answer exceeds {limit} bytes")
        except httpx.TimeoutException:
            raise _Transient("timeout", "the EHR did not answer within the timeout") from None
        except httpx.TransportError as exc:
            raise _Transient(
                "unreachable", f"the EHR is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in TRANSIENT_STATUSES:
            raise _Transient(
                "status", f"the EHR answered {response.status_code}", response.status_code
            )
        return _Answer(response.status_code, bytes(body))


class _Transient(ReadmitError):
    """Inside the retry loop only: a failure worth another attempt."""

    status = 503
    issue_code = "transient"

    def __init__(self, kind: str, reason: str, ehr_status: int | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.ehr_status = ehr_status


def _json_object(url: str, body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise EhrRefused(url, "the EHR's answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise EhrRefused(url, "the EHR's answer is not a JSON object")
    return parsed
