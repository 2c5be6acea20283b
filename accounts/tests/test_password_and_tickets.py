import pytest

from accounts.models import User
from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

URL = "/users/me/password"
NEW = "a-brand-new-passphrase"


def change(client, current=TEST_PASSWORD, new=NEW):
    return client.post(URL, {"current_password": current, "new_password": new}, format="json")


def test_change_password_returns_a_working_token_and_revokes_old_ones(auth_client, api_client, user, token_for):
    old_token = token_for(user)
    response = change(auth_client)
    assert response.status_code == 200
    new_token = response.json()["token"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {old_token}")
    refused = api_client.get("/users/me")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_token}")
    assert api_client.get("/users/me").status_code == 200

    user.refresh_from_db()
    assert user.check_password(NEW) and not user.check_password(TEST_PASSWORD)
    assert user.password.startswith("bcrypt_sha256$")
    login = api_client.post("/auth/login", {"email": user.email, "password": NEW}, format="json")
    assert login.status_code == 200


def test_wrong_current_password(auth_client, user):
    response = change(auth_client, current="not-my-password")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_current_password"
    assert response.json()["field"] == "current_password"
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)


@pytest.mark.parametrize("new", ["short", "password123", "1234567890123", "alice-example"])
def test_new_password_goes_through_django_validators(auth_client, user, new):
    response = change(auth_client, new=new)
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert response.json()["field"] == "new_password"
    user.refresh_from_db()
    assert user.token_version == 0


@pytest.mark.parametrize("body", [{}, {"current_password": TEST_PASSWORD}, {"new_password": NEW}, []])
def test_missing_fields(auth_client, body):
    assert auth_client.post(URL, body, format="json").status_code == 400


def test_requires_authentication(api_client):
    assert api_client.post(URL, {"current_password": "a", "new_password": "b"}, format="json").status_code == 401


def test_profile_update_cannot_change_password(auth_client, user):
    auth_client.put("/users/me/update", {"username": "alice2", "password": NEW}, format="json")
    assert User.objects.get(pk=user.pk).check_password(TEST_PASSWORD)


def test_ticket_endpoint(auth_client, api_client):
    response = auth_client.post("/ws/ticket")
    assert response.status_code == 200
    body = response.json()
    assert len(body["ticket"]) >= 32 and body["expires_in"] == 30
    assert api_client.post("/ws/ticket").status_code == 401


def test_tickets_are_stored_hashed(auth_client):
    from django.core.cache import cache

    ticket = auth_client.post("/ws/ticket").json()["ticket"]
    assert cache.get(f"wsticket:{ticket}") is None  # the raw ticket is never a cache key
