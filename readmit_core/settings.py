"""The one place configuration comes from.

Every component (ingest, scorer, web, model store, CLI) reads its configuration
from this single pydantic-settings class, so an operator has one list of
environment variables to learn (all prefixed ``READMIT_``) and a setting can never
mean two things in two places. Defaults make the embedded one-command run work on
a laptop with nothing installed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from readmit_core.errors import ReadmitError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that are public (this file, .env.example, the README): the embedded demo may use
# them, nothing else may. A "change-me" placeholder is as public as a default.
DEMO_SECRET_VALUES = frozenset(
    {
        "insecure-embedded-access-token-secret",
        "insecure-embedded-only-change-me",
        "dev-read-token",
        "dev-ingest-token",
    }
)
PLACEHOLDER_MARK = "change-me"
MIN_SECRET_CHARS = 32
MIN_TOKEN_CHARS = 20


class UnsafeSettings(ReadmitError):
    """Refusal to run outside the embedded demo with a setting an attacker could know.

    Not a ValueError on purpose: pydantic would bury it in a multi-line validation report,
    and the operator should see exactly one line naming the variable to fix.
    """

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"refusing to start: {variable} {reason} (READMIT_EMBEDDED=false)")
        self.variable = variable
        self.reason = reason


def _is_public(value: str) -> bool:
    return value in DEMO_SECRET_VALUES or PLACEHOLDER_MARK in value.lower()


def comma_list(value: str) -> tuple[str, ...]:
    """A comma-separated setting as its items, blanks and surrounding spaces dropped.

    The environment holds lists as ``a,b,c`` (what operators write in compose files and
    ConfigMaps); this is the only place that reads that syntax, so every caller sees the
    same items in the same order.
    """
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)


def parse_base_urls(value: str) -> tuple[str, ...]:
    """Comma-separated absolute http(s) base URLs → a tuple without trailing slashes;
    anything else (no host, a query or fragment, another scheme) is refused by name."""
    bases = []
    for item in comma_list(value):
        base = item.rstrip("/")
        parts = urlsplit(base)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(f"not an absolute http(s) base URL: {base!r}")
        bases.append(base)
    return tuple(bases)


class Settings(BaseSettings):
    """Runtime configuration; each field maps to ``READMIT_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="READMIT_", extra="ignore")

    # --- where things listen -------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the score cache.")
    database_url: str = Field(
        "",
        description="Django database URL (postgresql://user@host:port/db); empty means SQLite "
        "in the state directory (embedded default only).",
    )
    ingest_host: str = Field("127.0.0.1", description="Bind address of the FHIR ingest API.")
    ingest_port: int = Field(8001, description="Port of the FHIR ingest API.")
    ingest_workers: int = Field(
        2,
        ge=1,
        description="Ingest API worker processes (uvicorn --workers). FHIR validation and "
        "mapping are CPU-bound Python, so one process uses one core: set about one per core "
        "given to the ingest container. /metrics sums every worker (prometheus_client "
        "multiprocess mode, PROMETHEUS_MULTIPROC_DIR).",
    )
    web_host: str = Field("127.0.0.1", description="Bind address of the web app.")
    web_port: int = Field(8000, description="Port of the web app (dashboards, REST, FHIR, CDS).")
    scorer_metrics_port: int = Field(9464, description="Prometheus /metrics port of a scorer.")
    explainer_metrics_port: int = Field(
        9474,
        description="Prometheus /metrics port of an explainer (0 = off). The embedded "
        "stack's scorers count up from READMIT_SCORER_METRICS_PORT past every port in use.",
    )
    feed_metrics_port: int = Field(
        9465, ge=0, description="Prometheus /metrics port of the alert feed (0: not served)."
    )
    scorer_metrics_urls: str = Field(
        "http://127.0.0.1:9464/metrics",
        description="Scorer /metrics URLs the web ops page scrapes, comma separated.",
    )
    ops_sample_seconds: float = Field(
        15.0,
        ge=0,
        description="How often the web process samples lag, throughput, latency and dead "
        "letters for the ops page's last-hour plots (0: no sampling).",
    )
    web_allowed_hosts: str = Field(
        "127.0.0.1,localhost", description="Host names the web app answers to, comma separated."
    )
    api_throttle_rate: str = Field(
        "600/min", description="Request rate allowed per API client key (DRF rate syntax)."
    )

    # --- files -----------------------------------------------------------------------
    state_dir: Path = Field(
        PROJECT_ROOT / "var", description="Writable state: SQLite, logs, embedded services."
    )
    model_dir: Path = Field(
        PROJECT_ROOT / "var" / "models", description="Model registry (artifacts + manifests)."
    )
    data_path: Path = Field(
        PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz",
        description="Training data in the original UCI format.",
    )

    # --- Kafka topics and consumer behaviour ----------------------------------------
    topic_prefix: str = Field("readmit.", description="Prefix of every topic name.")
    topic_partitions: int = Field(4, description="Partitions of topics this app creates.")
    scorer_group: str = Field("readmit-scorer", description="Consumer group of the scorers.")
    alerts_group: str = Field("readmit-alerts-web", description="Consumer group of the web feed.")
    explainer_group: str = Field(
        "readmit-explainer", description="Consumer group of the explainers (``readmit explainer``)."
    )
    consumer_session_timeout_ms: int = Field(6000, description="Kafka group session timeout.")
    consumer_heartbeat_interval_ms: int = Field(500, description="Kafka heartbeat interval.")
    consumer_max_poll_interval_ms: int = Field(10000, description="Kafka max poll interval.")
    scorer_batch_max: int = Field(500, description="Most events a scorer scores in one call.")
    scorer_poll_timeout_ms: int = Field(50, description="How long one poll waits for data.")
    consumer_fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        description="How long the broker holds a fetch that has no data yet (every consumer: "
        "scorer, alert feed). kafka-python's default, 500 ms, was most of POST -> score latency; "
        "10 ms costs a few % of a core per idle consumer.",
    )
    producer_linger_ms: int = Field(
        2,
        ge=0,
        description="How long a producer waits to fill a batch before sending. Loops that flush "
        "per batch (the scorer) send at the flush anyway; this bounds the wait of ingest's sends.",
    )
    ingest_producer_linger_ms: int = Field(
        0,
        ge=0,
        description="The linger of ingest's producer. Each request waits for its own acks, so a "
        "linger only delays it, and kafka-python wakes the sender twice (new batch, then linger "
        "over) instead of once.",
    )
    producer_batch_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        description="Per-partition producer batch size. kafka-python's 16 KiB holds ~6 score "
        "events, and every new batch wakes the sender thread: a wakeup per few records.",
    )

    # --- scoring and caching ---------------------------------------------------------
    scorer_explain_bands: str = Field(
        "medium,high",
        description="Risk bands whose scores the scorer explains (comma separated, or 'all'). "
        "TreeSHAP costs ~2.5 ms a score with the 800-tree champion; low-risk scores then carry no "
        "factors (the what-if form and POST /api/v1/predict always explain).",
    )
    scorer_explain_inline: bool = Field(
        False,
        description="False (the default): the scorer publishes every score at once, those whose "
        "band needs factors marked ``factors_pending``, and the explainer stage (``readmit "
        "explainer``: its own consumer group on risk.scored, started by ``readmit up``, a "
        "service in docker-compose.yml, a Deployment in infra/k8s) adds the same TreeSHAP "
        'factors within about a second; pages say "Explaining…" meanwhile. A scorer with no '
        "explainer leaves those alerts without factors: the ops page (alerts awaiting factors) "
        "and the ReadmitExplainersAllDown alert show it. True: explain in the scorer's loop "
        "(~2.4 ms a row on the critical path: about half the scorer's throughput).",
    )
    scorer_compile_trees: bool = Field(
        True,
        description="Compile a LightGBM champion to native code (lleaves) after loading it: "
        "~3.8x faster batch scoring, seconds of one core per hundred trees to build. The "
        "scorer joins its group, or swaps a reloaded champion in, only once the compile is "
        "done. Off: LightGBM's own predictor only.",
    )
    score_ttl_seconds: int = Field(
        60 * 60 * 24 * 30, description="TTL of cached scores in Redis (default 30 days)."
    )
    history_ttl_seconds: int = Field(
        60 * 60 * 24 * 400,
        description="History horizon: how long a patient's earlier stays, accepted versions and "
        "loose resources are kept (the features look back 365 days; the rest is margin). Older "
        "rows are pruned from the state database.",
    )
    state_upkeep_interval_s: float = Field(
        5.0,
        description="How often each scorer checks, off its poll loop, that Redis still holds the "
        "cache (a flushed or replaced Redis is refilled from the state database, one process at "
        "a time). 0: never (only `readmit rescore` refills).",
    )
    state_prune_interval_s: float = Field(
        3600.0,
        description="How often (across all scorers) state older than the history horizon (wall "
        "clock) is pruned from the state database. 0: never (set it for replays of historical "
        "records; the embedded run never prunes).",
    )
    rescore_window_hours: float = Field(
        72.0,
        ge=0,
        description="How long after discharge (Encounter.period.end, else first acceptance) a "
        "late or corrected resource that changes a stay's features re-scores it; later ones "
        "are stored but not re-scored (the response says so).",
    )

    # --- security --------------------------------------------------------------------
    ingest_tokens: str = Field(
        "dev-ingest-token",
        description="Static bearer tokens accepted by the ingest API, comma separated "
        "(embedded default; production should use SMART backend JWTs).",
    )
    ingest_static_tokens: bool = Field(
        True,
        description="Accept the static READMIT_INGEST_TOKENS (embedded default); set false in "
        "production so only SMART backend-services access tokens are accepted.",
    )
    smart_clients_file: Path | None = Field(
        None,
        description="JSON file of SMART backend-services clients: "
        '{"client_id": {"jwks": {...public keys...}, "scopes": ["system/*.write"]}}.',
    )
    cds_clients_file: Path | None = Field(
        None,
        description="JSON file of the EHRs whose signed CDS Hooks JWTs the web app accepts, by "
        'issuer: {"<iss>": {"jku": ["<JWKS URL>"...], "jwks": {...optional inline keys...}, '
        '"sub": ["<client id>"...optional], "fhir_servers": ["<FHIR base>"...]}}. A token\'s '
        "`jku` must be listed; without one the first listed URL (or the inline keys) is used. "
        "The service fetches missing prefetch data only from the listed FHIR servers.",
    )
    web_public_url: str = Field(
        "",
        description="Public base URL of the web app as EHRs call it (the `aud` a CDS Hooks JWT "
        "must name: <this>/cds-services/<id>); empty means the URL of the request as received.",
    )
    access_token_secret: SecretStr = Field(
        SecretStr("insecure-embedded-access-token-secret"),
        description="HMAC key signing the ingest's short-lived access tokens; set in production.",
    )
    access_token_ttl_seconds: int = Field(300, description="Lifetime of issued access tokens.")
    ingest_public_url: str = Field(
        "",
        description="Public base URL of the ingest API as clients see it (the JWT audience of "
        "/auth/token); empty means http://READMIT_INGEST_HOST:READMIT_INGEST_PORT.",
    )
    api_token: SecretStr = Field(
        SecretStr("dev-read-token"),
        description="Bearer token for reading scores from the ingest-side score endpoint.",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token Prometheus sends to the ingest API's /metrics (a scrape "
        "config `authorization: credentials_file:`). Empty: /metrics answers anonymously in "
        "the embedded run only; with READMIT_EMBEDDED=false it then refuses every caller.",
    )
    django_secret_key: SecretStr = Field(
        SecretStr("insecure-embedded-only-change-me"),
        description="Django SECRET_KEY; must be set in any real deployment.",
    )
    model_verify_key: str = Field(
        "",
        description="Ed25519 public key (base64 of the 32 raw bytes) every model artifact must "
        "be signed with before it is unpickled; public, so it may sit in a ConfigMap, but kept "
        "apart from the registry's storage. Empty: the public half of the signing key (embedded "
        "run). `readmit models keygen` prints a pair.",
    )
    model_signing_key: SecretStr = Field(
        SecretStr(""),
        description="Ed25519 private key (base64 of the 32 raw bytes) that signs artifacts at "
        "registration (training only). Empty: a key generated once in "
        "READMIT_MODEL_SIGNING_KEY_FILE (embedded run).",
    )
    model_signing_key_file: Path = Field(
        PROJECT_ROOT / "var" / "keys" / "model-signing.key",
        description="Where the embedded run keeps its generated signing key; outside the "
        "registry directory on purpose (whoever can write models must not hold the key).",
    )
    session_max_age_seconds: int = Field(
        8 * 60 * 60, description="Web login lifetime (a shift); ward sockets close with it."
    )
    # --- the EHR's FHIR server (id-only / empty Subscription notifications) --------------
    ehr_fhir_base_urls: str = Field(
        "",
        description="FHIR base URLs of the EHR servers ingest may fetch from, comma separated "
        "(https only outside the embedded run). A notification naming any other server is "
        "refused; empty: id-only and empty notifications are refused.",
    )
    ehr_client_id: str = Field(
        "", description="Our SMART Backend Services client id, as the EHR registered it."
    )
    ehr_private_key_file: Path | None = Field(
        None,
        description="PEM private key (RSA >= 2048 bits for RS384, or P-384 for ES384) that "
        "signs our client assertions; `readmit ehr keygen` writes one and prints the JWKS "
        "the EHR registers.",
    )
    ehr_scopes: str = Field(
        "system/Patient.read system/Encounter.read system/Condition.read "
        "system/Observation.read system/MedicationRequest.read "
        "system/MedicationAdministration.read system/MedicationStatement.read "
        "system/Procedure.read system/Coverage.read system/Location.read",
        description="Scopes requested from the EHR's token endpoint (space separated).",
    )
    ehr_timeout_seconds: float = Field(
        10.0, gt=0, description="Connect/read timeout of one request to the EHR."
    )
    ehr_retries: int = Field(
        2, ge=0, description="Retries of a failed EHR request (timeouts, 5xx, 429)."
    )
    ehr_retry_backoff_seconds: float = Field(
        0.5, ge=0, description="First pause before retrying an EHR request; doubles, capped at 4 s."
    )
    ehr_page_size: int = Field(
        100, ge=1, le=1000, description="_count of each search against the EHR."
    )
    ehr_max_pages: int = Field(
        5, ge=1, description="Most pages read of one search; the rest is not fetched."
    )
    ehr_max_focus: int = Field(
        20, ge=1, description="Most focus resources one notification may name."
    )
    # --- web login lockout --------------------------------------------------------------
    login_failure_limit: int = Field(
        5,
        ge=1,
        description="Failed web logins for one user name from one address before that pair is "
        "locked out (django-axes); an admin unlocks it early (admin *Access attempts*, or "
        "`python -m alerts_web axes_reset_username <name>`).",
    )
    login_lockout_minutes: int = Field(
        30,
        ge=0,
        description="How long a locked-out user name + address stays locked; 0: until an admin "
        "unlocks it.",
    )
    login_proxy_hops: int = Field(
        0,
        ge=0,
        description="Reverse proxies in front of the web app and ingest that append to "
        "X-Forwarded-For: the login lockout counts, and the access audits record, the address "
        "that many hops from the right (0: the TCP peer, REMOTE_ADDR). Only set it if the proxy "
        "appends and cannot be bypassed.",
    )
    debug: bool = Field(False, description="Django DEBUG; never on in production.")
    max_request_bytes: int = Field(5 * 1024 * 1024, description="Largest accepted FHIR body.")

    # --- embedded run ----------------------------------------------------------------
    embedded: bool = Field(
        True, description="`readmit up` starts its own broker and Redis when true."
    )
    kafka_port: int = Field(9092, description="Port of the embedded Kafka-protocol broker.")
    redis_port: int = Field(6379, description="Port for an embedded Redis when none answers.")
    replay_rate: float = Field(2.0, description="Bundles/s the demo replay posts in `readmit up`.")
    log_level: str = Field("INFO", description="Log level of every component.")

    @field_validator("ehr_fhir_base_urls")
    @classmethod
    def _base_urls_parse(cls, value: str) -> str:
        parse_base_urls(value)  # refuse a malformed list at start-up, not at the first notification
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_outside_embedded(self) -> Settings:
        """Outside the embedded demo, every secret must be one only the operator knows.

        The embedded run (zero configuration on a laptop) keeps its public demo values;
        anything with READMIT_EMBEDDED=false refuses to start on the first unsafe setting.
        """
        if self.embedded:
            return self
        secrets = {
            "READMIT_ACCESS_TOKEN_SECRET": (self.access_token_secret, MIN_SECRET_CHARS),
            "READMIT_DJANGO_SECRET_KEY": (self.django_secret_key, 50),
            "READMIT_API_TOKEN": (self.api_token, MIN_TOKEN_CHARS),
        }
        for variable, (secret, min_chars) in secrets.items():
            value = secret.get_secret_value()
            if _is_public(value):
                raise UnsafeSettings(variable, "is a public default or placeholder; set a secret")
            if len(value) < min_chars:
                raise UnsafeSettings(variable, f"is shorter than {min_chars} characters")
        if self.ingest_static_tokens:
            for token in self.ingest_token_set:
                if _is_public(token):
                    raise UnsafeSettings(
                        "READMIT_INGEST_TOKENS", "holds a public demo token or placeholder"
                    )
                if len(token) < MIN_TOKEN_CHARS:
                    raise UnsafeSettings(
                        "READMIT_INGEST_TOKENS", f"holds a token shorter than {MIN_TOKEN_CHARS}"
                    )
        if self.debug:
            raise UnsafeSettings("READMIT_DEBUG", "is on; it shows settings and patient data")
        for base in self.ehr_base_urls:
            if not base.startswith("https://"):
                raise UnsafeSettings(
                    "READMIT_EHR_FHIR_BASE_URLS", "names a base URL that is not https"
                )
        if self.ehr_base_urls and not (self.ehr_client_id and self.ehr_private_key_file):
            raise UnsafeSettings(
                "READMIT_EHR_CLIENT_ID",
                "and READMIT_EHR_PRIVATE_KEY_FILE must be set with READMIT_EHR_FHIR_BASE_URLS",
            )
        hosts = self.allowed_hosts
        if "web_allowed_hosts" not in self.model_fields_set or not hosts or "*" in hosts:
            raise UnsafeSettings(
                "READMIT_WEB_ALLOWED_HOSTS", "must name the web app's host names explicitly"
            )
        if not self.model_verify_key.strip() or _is_public(self.model_verify_key):
            raise UnsafeSettings(
                "READMIT_MODEL_VERIFY_KEY",
                "is not set; give the public key models are verified with",
            )
        return self

    def topic(self, name: str) -> str:
        """Full topic name; prefixed so several deployments can share a cluster."""
        return f"{self.topic_prefix}{name}"

    @property
    def explain_band_set(self) -> frozenset[str] | None:
        """None means every band (``all``)."""
        bands = frozenset(comma_list(self.scorer_explain_bands))
        return None if "all" in bands else bands

    @property
    def kafka_servers(self) -> list[str]:
        """READMIT_KAFKA_BOOTSTRAP as the ``host:port`` list Kafka clients take."""
        return list(comma_list(self.kafka_bootstrap))

    @property
    def allowed_hosts(self) -> list[str]:
        """READMIT_WEB_ALLOWED_HOSTS as Django's ALLOWED_HOSTS."""
        return list(comma_list(self.web_allowed_hosts))

    @property
    def scorer_metrics_url_list(self) -> list[str]:
        """READMIT_SCORER_METRICS_URLS: the scorer /metrics endpoints the ops page scrapes."""
        return list(comma_list(self.scorer_metrics_urls))

    @property
    def ingest_url(self) -> str:
        return f"http://{self.ingest_host}:{self.ingest_port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def ehr_base_urls(self) -> tuple[str, ...]:
        """The configured EHR FHIR bases, without trailing slashes (the allowlist)."""
        return parse_base_urls(self.ehr_fhir_base_urls)

    @property
    def ingest_token_set(self) -> frozenset[str]:
        return frozenset(comma_list(self.ingest_tokens))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests clear the cache to change them."""
    return Settings()
