"""SMART Backend Services: client assertion → access token → scoped writes."""

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingest.auth import AuthError
from ingest.smart import SmartAuthority, scope_covers
from readmit_core.settings import Settings


class ReplayGuard:
    """Stands in for Redis SET NX EX: remembers keys."""

    def __init__(self):
        self.keys = set()

    def set(self, key, value, nx, ex):
        if key in self.keys:
            return None
        self.keys.add(key)
        return True


def _jwk(public_key, kid, alg):
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(public_key))
    jwk.update(kid=kid, alg=alg)
    return jwk


@pytest.fixture
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def authority(tmp_path, rsa_key):
    ec_key = ec.generate_private_key(ec.SECP384R1())
    clients = {
        "ehr-1": {
            "jwks": {"keys": [_jwk(rsa_key.public_key(), "k1", "RS384")]},
            "scopes": ["system/*.write"],
        },
        "lab-feed": {
            "jwks": {"keys": [_jwk(ec_key.public_key(), "e1", "ES384")]},
            "scopes": ["system/Observation.write"],
        },
    }
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(clients))
    settings = Settings(smart_clients_file=path, ingest_static_tokens=False, ingest_port=8123)
    auth = SmartAuthority(settings, replay_guard=ReplayGuard())
    auth.test_ec_key = ec_key
    return auth


def _assertion(key, client_id, aud, kid, alg="RS384", lifetime=240, jti=None):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _form(assertion, scope="system/*.write"):
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def test_valid_assertion_gets_a_token_that_authorizes_writes(authority, rsa_key):
    body = authority.issue(_form(_assertion(rsa_key, "ehr-1", authority.token_url, "k1")))
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    principal = authority.authenticate(body["access_token"])
    principal.require_write({"Encounter", "Patient", "Observation"})


def test_replayed_jti_is_refused(authority, rsa_key):
    assertion = _assertion(rsa_key, "ehr-1", authority.token_url, "k1", jti="same")
    authority.issue(_form(assertion))
    with pytest.raises(AuthError) as err:
        authority.issue(_form(assertion))
    assert err.value.status == 401


def test_wrong_audience_is_refused(authority, rsa_key):
    with pytest.raises(AuthError):
        authority.issue(_form(_assertion(rsa_key, "ehr-1", "https://elsewhere/token", "k1")))


def test_long_lived_assertion_is_refused(authority, rsa_key):
    with pytest.raises(AuthError, match="5 minutes"):
        authority.issue(
            _form(_assertion(rsa_key, "ehr-1", authority.token_url, "k1", lifetime=3600))
        )


def test_assertion_signed_by_another_key_is_refused(authority):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthError):
        authority.issue(_form(_assertion(other, "ehr-1", authority.token_url, "k1")))


def test_narrow_client_gets_narrow_token(authority):
    key = authority.test_ec_key
    assertion = _assertion(key, "lab-feed", authority.token_url, "e1", alg="ES384")
    with pytest.raises(AuthError) as err:
        authority.issue(_form(assertion))  # asks for system/*.write
    assert err.value.status == 403
    assertion = _assertion(key, "lab-feed", authority.token_url, "e1", alg="ES384")
    body = authority.issue(_form(assertion, scope="system/Observation.write"))
    principal = authority.authenticate(body["access_token"])
    principal.require_write({"Observation"})
    with pytest.raises(AuthError) as err:
        principal.require_write({"Encounter"})
    assert err.value.status == 403


def test_static_tokens_off_in_production_mode(authority):
    with pytest.raises(AuthError):
        authority.authenticate("dev-ingest-token")


def test_expired_access_token_is_refused(authority):
    expired = jwt.encode(
        {
            "iss": authority.token_url,
            "sub": "ehr-1",
            "exp": int(time.time()) - 10,
            "scope": "system/*.write",
        },
        authority.settings.access_token_secret.get_secret_value(),
        algorithm="HS256",
    )
    with pytest.raises(AuthError):
        authority.authenticate(expired)


@pytest.mark.parametrize(
    ("scope", "rtype", "ok"),
    [
        ("system/*.write", "Encounter", True),
        ("system/Encounter.write", "Encounter", True),
        ("system/Encounter.write", "Patient", False),
        ("system/*.read", "Encounter", False),
        ("system/Encounter.cud", "Encounter", True),
        ("system/Encounter.rs", "Encounter", False),
        ("patient/*.write", "Encounter", False),
    ],
)
def test_scope_grammar(scope, rtype, ok):
    assert scope_covers(scope, rtype) is ok
