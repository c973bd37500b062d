"""Outside the embedded demo the settings class refuses every public or unsafe value."""

from __future__ import annotations

from typing import Any

import pytest

from readmit_core.settings import Settings, UnsafeSettings

SAFE: dict[str, Any] = {
    "embedded": False,
    "access_token_secret": "a" * 40,
    "django_secret_key": "k" * 60,
    "api_token": "r" * 30,
    "ingest_tokens": "i" * 30,
    "web_allowed_hosts": "readmit.example.org",
    "model_verify_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
}


def test_a_configured_deployment_starts() -> None:
    assert Settings(**SAFE).embedded is False


def test_the_embedded_default_needs_no_configuration() -> None:
    assert Settings().embedded is True


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("access_token_secret", "insecure-embedded-access-token-secret", "ACCESS_TOKEN_SECRET"),
        ("access_token_secret", "short", "ACCESS_TOKEN_SECRET"),
        ("django_secret_key", "insecure-embedded-only-change-me", "DJANGO_SECRET_KEY"),
        ("django_secret_key", "change-me-django-secret-key-" + "x" * 40, "DJANGO_SECRET_KEY"),
        ("api_token", "dev-read-token", "API_TOKEN"),
        ("ingest_tokens", "good-token-good-token-1,dev-ingest-token", "INGEST_TOKENS"),
        ("debug", True, "DEBUG"),
        ("web_allowed_hosts", "", "WEB_ALLOWED_HOSTS"),
        ("web_allowed_hosts", "*", "WEB_ALLOWED_HOSTS"),
        ("model_verify_key", "", "MODEL_VERIFY_KEY"),
    ],
)
def test_unsafe_value_is_refused_naming_the_variable(field: str, value: Any, variable: str) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        Settings(**{**SAFE, field: value})
    message = str(refused.value)
    assert f"READMIT_{variable}" in message
    assert "\n" not in message
    if isinstance(value, str) and len(value) > 5:
        assert value not in message  # a refusal never echoes a secret


def test_defaults_are_refused_when_only_embedded_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READMIT_EMBEDDED", "false")
    with pytest.raises(UnsafeSettings, match="READMIT_"):
        Settings()


def test_allowed_hosts_must_be_given_explicitly() -> None:
    safe = {k: v for k, v in SAFE.items() if k != "web_allowed_hosts"}
    with pytest.raises(UnsafeSettings, match="READMIT_WEB_ALLOWED_HOSTS"):
        Settings(**safe)


def test_static_demo_token_is_allowed_only_if_static_tokens_are_off() -> None:
    settings = Settings(
        **{**SAFE, "ingest_tokens": "dev-ingest-token", "ingest_static_tokens": False}
    )
    assert settings.ingest_static_tokens is False
