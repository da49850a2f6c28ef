"""CDS Hooks client JWT verification (pure: no app), incl. the spec's example token and key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from referral_api.cds.client_jwt import (
    CdsClientRegistry,
    ClientAuthError,
    ClientRegistryError,
    looks_like_jwt,
)
from tests.cds.builders import EXAMPLE_ISSUER, conformance, mint

EXAMPLE_AUD = "https://cds.example.org/cds-services/some-service"
AUD = "https://cds.example.org/cds-services/spine-mri-appropriateness"


class JtiStore:
    """In-memory stand-in for the decision log's seen_jti."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, iss: str, jti: str, exp: int) -> bool:
        key = (iss, jti)
        replay = key in self.seen
        self.seen.add(key)
        return replay


@pytest.fixture
def registry() -> CdsClientRegistry:
    return CdsClientRegistry(
        {EXAMPLE_ISSUER: {"jwks": conformance("cds-hooks-2.0.1-example.jwks.json")}})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_spec_example_token_verifies_but_is_expired(registry):
    token = conformance("cds-hooks-2.0.1-example.jwt")
    # The signature is good: PyJWT accepts it when expiry is not checked ...
    key = jwt.PyJWK(conformance("cds-hooks-2.0.1-example.jwks.json")["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["ES384"], audience=EXAMPLE_AUD,
                        options={"verify_exp": False})
    assert claims["iss"] == EXAMPLE_ISSUER
    # ... and the service refuses it as expired.
    with pytest.raises(ClientAuthError, match="expired"):
        registry.verify(token, audience=EXAMPLE_AUD, seen_jti=JtiStore())


def test_token_minted_with_example_key_is_accepted(registry, example_private_key):
    token = mint(example_private_key, AUD)
    verified = registry.verify(token, audience=AUD, seen_jti=JtiStore())
    assert verified.issuer == EXAMPLE_ISSUER
    assert verified.subject == "example-client"


def test_replayed_jti_is_refused(registry, example_private_key):
    store = JtiStore()
    token = mint(example_private_key, AUD, jti="once")
    registry.verify(token, audience=AUD, seen_jti=store)
    with pytest.raises(ClientAuthError, match="already used"):
        registry.verify(token, audience=AUD, seen_jti=store)
    # a fresh token reusing the jti is a replay too
    with pytest.raises(ClientAuthError, match="already used"):
        registry.verify(mint(example_private_key, AUD, jti="once"), audience=AUD,
                        seen_jti=store)


def test_alg_none_is_refused(registry):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}." + _b64({
        "iss": EXAMPLE_ISSUER, "aud": AUD, "exp": int(time.time()) + 60,
        "iat": int(time.time()), "jti": "n"}) + "."
    with pytest.raises(ClientAuthError, match="ES384 or RS384"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_hmac_is_refused_even_with_the_public_key_as_secret(registry):
    public_jwk = conformance("cds-hooks-2.0.1-example.jwks.json")["keys"][0]
    now = int(time.time())
    claims = {"iss": EXAMPLE_ISSUER, "aud": AUD, "exp": now + 60, "iat": now, "jti": "h"}
    for secret in (json.dumps(public_jwk), "x" * 64):
        # Built by hand: PyJWT itself refuses to HMAC-sign with something shaped like a JWK.
        signing_input = f"{_b64({'alg': 'HS256', 'kid': 'example-kid'})}.{_b64(claims)}"
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        with pytest.raises(ClientAuthError, match="ES384 or RS384"):
            registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_wrong_audience_is_refused(registry, example_private_key):
    token = mint(example_private_key, "https://cds.example.org/cds-services/other")
    with pytest.raises(ClientAuthError, match="aud"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_unknown_issuer_is_refused(registry, example_private_key):
    token = mint(example_private_key, AUD, issuer="https://evil.example.com/")
    with pytest.raises(ClientAuthError, match="issuer"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_wrong_key_signature_is_refused(registry):
    other = ec.generate_private_key(ec.SECP384R1())
    token = mint(other, AUD)
    with pytest.raises(ClientAuthError, match="signature"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_unknown_kid_is_refused(registry, example_private_key):
    token = mint(example_private_key, AUD, kid="rotated-away")
    with pytest.raises(ClientAuthError, match="no key"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


@pytest.mark.parametrize("missing", ["jti", "exp", "iat", "aud"])
def test_required_claims(registry, example_private_key, missing):
    now = int(time.time())
    claims = {"iss": EXAMPLE_ISSUER, "aud": AUD, "exp": now + 60, "iat": now, "jti": "r"}
    del claims[missing]
    token = jwt.encode(claims, example_private_key, algorithm="ES384",
                       headers={"kid": "example-kid"})
    with pytest.raises(ClientAuthError):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_iat_in_the_future_is_refused(registry, example_private_key):
    token = mint(example_private_key, AUD, iat=int(time.time()) + 3600, lifetime=7200)
    with pytest.raises(ClientAuthError, match="iat"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_expired_minted_token_is_refused(registry, example_private_key):
    token = mint(example_private_key, AUD, lifetime=-120, iat=int(time.time()) - 400)
    with pytest.raises(ClientAuthError, match="expired"):
        registry.verify(token, audience=AUD, seen_jti=JtiStore())


def test_rs384_from_a_jwks_url_with_cache_and_rotation():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(new_key.public_key()))
    served = {"keys": [{**public, "kid": "k1", "alg": "RS384", "use": "sig"}]}
    calls: list[str] = []
    clock = [1000.0]

    def fetch(url: str, timeout: float) -> bytes:
        calls.append(url)
        assert timeout > 0
        return json.dumps(served).encode()

    registry = CdsClientRegistry({"https://ehr.example.net": {
        "jwks_url": "https://ehr.example.net/.well-known/jwks.json"}},
        fetch=fetch, clock=lambda: clock[0])
    iss = "https://ehr.example.net"
    store = JtiStore()
    registry.verify(mint(key, AUD, issuer=iss, algorithm="RS384", kid="k1"), audience=AUD,
                    seen_jti=store)
    registry.verify(mint(key, AUD, issuer=iss, algorithm="RS384", kid="k1"), audience=AUD,
                    seen_jti=store)
    assert len(calls) == 1  # cached
    # The client rotates to k2: an unknown kid triggers one refetch (not within 30 s).
    served["keys"].append({**new_public, "kid": "k2", "alg": "RS384"})
    clock[0] += 60
    registry.verify(mint(new_key, AUD, issuer=iss, algorithm="RS384", kid="k2"),
                    audience=AUD, seen_jti=store)
    assert len(calls) == 2
    # ES384 header with an RSA key set: no matching key.
    with pytest.raises(ClientAuthError):
        registry.verify(mint(ec.generate_private_key(ec.SECP384R1()), AUD, issuer=iss,
                             kid="k1"), audience=AUD, seen_jti=store)


def test_jwks_fetch_failure_is_an_auth_failure():
    def fetch(url: str, timeout: float) -> bytes:
        raise TimeoutError("slow host")

    registry = CdsClientRegistry({"https://ehr.example.net": {
        "jwks_url": "https://ehr.example.net/jwks"}}, fetch=fetch)
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ClientAuthError, match="could not be fetched"):
        registry.verify(mint(key, AUD, issuer="https://ehr.example.net"), audience=AUD,
                        seen_jti=JtiStore())


def test_registry_file_validation(tmp_path: Path):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({EXAMPLE_ISSUER: {
        "jwks": conformance("cds-hooks-2.0.1-example.jwks.json")}}))
    assert CdsClientRegistry.from_file(path).issuers == {EXAMPLE_ISSUER}
    for bad in ([], {"iss": {}}, {"iss": {"jwks": {}, "jwks_url": "https://x"}},
                {"iss": {"jwks_url": "file:///etc/passwd"}}, {"iss": {"jwks": {"keys": []}}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ClientRegistryError):
            CdsClientRegistry.from_file(path)
    path.write_text("{not json")
    with pytest.raises(ClientRegistryError):
        CdsClientRegistry.from_file(path)
    with pytest.raises(ClientRegistryError):
        CdsClientRegistry.from_file(tmp_path / "absent.json")


def test_looks_like_jwt(example_private_key):
    assert looks_like_jwt(mint(example_private_key, AUD))
    assert looks_like_jwt(conformance("cds-hooks-2.0.1-example.jwt"))
    assert not looks_like_jwt("rk_live_abc123")
    assert not looks_like_jwt("a.b.c")
    assert not looks_like_jwt("")
