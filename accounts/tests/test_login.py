import jwt
import pytest
from django.conf import settings

from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

URL = "/auth/login"


def test_login_returns_hs256_token_with_user_id_and_24h_expiry(api_client, user):
    response = api_client.post(URL, {"email": "alice@example.com", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert set(response.json()) == {"token"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    assert claims["user_id"] == str(user.id)
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert claims["token_type"] == "access"


def test_token_is_signed_with_jwt_secret_not_django_secret_key(api_client, user):
    response = api_client.post(URL, {"email": "alice@example.com", "password": TEST_PASSWORD}, format="json")
    token = response.json()["token"]
    assert settings.JWT_SECRET != settings.SECRET_KEY
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])


def test_email_is_case_insensitive(api_client, user):
    response = api_client.post(URL, {"email": " ALICE@Example.com ", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_401(api_client, user):
    wrong = api_client.post(URL, {"email": "alice@example.com", "password": "nope-nope-nope"}, format="json")
    unknown = api_client.post(URL, {"email": "nobody@example.com", "password": TEST_PASSWORD}, format="json")
    malformed = api_client.post(URL, {"email": "not an email", "password": TEST_PASSWORD}, format="json")
    assert wrong.status_code == unknown.status_code == malformed.status_code == 401
    assert wrong.json() == unknown.json() == malformed.json()
    assert wrong.json()["code"] == "invalid_credentials"


def test_inactive_user_cannot_log_in(api_client, user):
    user.is_active = False
    user.save()
    response = api_client.post(URL, {"email": "alice@example.com", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("body", [{}, {"email": "alice@example.com"}, {"password": TEST_PASSWORD}])
def test_missing_fields_are_400(api_client, body):
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_body_not_an_object_is_400(api_client):
    response = api_client.post(URL, "[]", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_login_with_get_is_json_405(api_client):
    response = api_client.get(URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
