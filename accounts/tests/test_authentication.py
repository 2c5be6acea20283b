import base64
import json
import time
import uuid

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import bearer_token_from_header, user_from_token
from accounts.exceptions import InvalidToken

pytestmark = pytest.mark.django_db

ME = "/users/me"


def claims_for(user, **overrides):
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + 3600,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": str(user.id),
        "ver": user.token_version,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims, key=None, algorithm="HS256"):
    return jwt.encode(claims, key or settings.JWT_SECRET, algorithm=algorithm)


def get_me(api_client, header):
    if header is not None:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    return api_client.get(ME)


def assert_401(response):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]


def test_valid_token_authenticates(api_client, user):
    response = get_me(api_client, f"Bearer {sign(claims_for(user))}")
    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)


def test_scheme_is_case_insensitive(api_client, user):
    assert get_me(api_client, f"bearer {sign(claims_for(user))}").status_code == 200


def test_missing_header(api_client, user):
    response = get_me(api_client, None)
    assert_401(response)
    assert response.json()["code"] == "not_authenticated"


def test_other_scheme(api_client, user):
    assert_401(get_me(api_client, f"Token {sign(claims_for(user))}"))


def test_basic_auth_scheme(api_client, user):
    assert_401(get_me(api_client, "Basic " + base64.b64encode(b"alice:pw").decode()))


def test_bearer_without_token(api_client, user):
    assert_401(get_me(api_client, "Bearer"))


def test_bearer_with_extra_parts(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user))} extra"))


def test_malformed_token(api_client, user):
    assert_401(get_me(api_client, "Bearer not.a.jwt"))


def test_garbage_token(api_client, user):
    assert_401(get_me(api_client, "Bearer %%%%"))


def test_expired_token(api_client, user):
    now = int(time.time())
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user, iat=now - 7200, exp=now - 1))}"))


def test_token_without_exp(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user, exp=None))}"))


def test_bad_signature(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user), key='another-secret-of-32-characters-at-least')}"))


def test_token_signed_with_django_secret_key(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user), key=settings.SECRET_KEY)}"))


def test_tampered_payload(api_client, user, make_user):
    other = make_user("mallory")
    header, _, signature = sign(claims_for(user)).split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims_for(other)).encode()).rstrip(b"=").decode()
    assert_401(get_me(api_client, f"Bearer {header}.{payload}.{signature}"))


def test_alg_none(api_client, user):
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_for(user))}."
    assert_401(get_me(api_client, f"Bearer {unsigned}"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_algorithm_hs512(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user), algorithm='HS512')}"))


def test_refresh_token_is_not_an_access_token(api_client, user):
    refresh = RefreshToken.for_user(user)
    refresh["ver"] = user.token_version
    assert_401(get_me(api_client, f"Bearer {refresh}"))


def test_token_for_deleted_user(api_client, user):
    token = sign(claims_for(user))
    user.delete()
    assert_401(get_me(api_client, f"Bearer {token}"))


def test_token_for_inactive_user(api_client, user):
    token = sign(claims_for(user))
    user.is_active = False
    user.save()
    assert_401(get_me(api_client, f"Bearer {token}"))


def test_token_with_malformed_user_id(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user, user_id='not-a-uuid'))}"))


def test_token_without_user_id(api_client, user):
    assert_401(get_me(api_client, f"Bearer {sign(claims_for(user, user_id=None))}"))


def test_token_with_old_version_is_revoked(api_client, user):
    token = sign(claims_for(user))
    user.token_version += 1
    user.save()
    response = get_me(api_client, f"Bearer {token}")
    assert_401(response)
    assert "revoked" in response.json()["detail"]


def test_non_latin1_header(api_client, user):
    # Header bytes outside latin-1 arrive as mojibake; never a 500.
    response = api_client.get(ME, HTTP_AUTHORIZATION="Bearer \u2603")
    assert_401(response)


def test_user_from_token_is_reusable_outside_drf(user, token_for):
    assert user_from_token(token_for(user)) == user
    with pytest.raises(InvalidToken):
        user_from_token("nope")


@pytest.mark.parametrize(
    ("header", "expected"),
    [(b"", None), ("Bearer abc", "abc"), (b"bearer abc", "abc")],
)
def test_bearer_token_from_header(header, expected):
    assert bearer_token_from_header(header) == expected


def test_a_verified_token_is_kept_but_still_expires(user, token_for, monkeypatch):
    """Claims of a verified token are kept (a reconnect storm checks one
    signature per token, not per socket); expiry is checked on every use."""
    from accounts import authentication
    from accounts.exceptions import InvalidToken

    token = token_for(user)
    claims = authentication.decode_access_token(token)
    assert authentication.decode_access_token(token) is claims  # not verified again
    later = claims.expires_at + 1
    monkeypatch.setattr(authentication.time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        authentication.decode_access_token(token)
