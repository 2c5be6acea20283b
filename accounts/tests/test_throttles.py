"""REST limits: per user after authentication; login/register per address and per email."""

import pytest

from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_rest_limit_is_60_a_minute_per_user_with_headers(auth_client, clock):
    for n in range(60):
        response = auth_client.get("/users/me")
        assert response.status_code == 200, n
    assert response["RateLimit-Limit"] == "60"
    assert response["RateLimit-Remaining"] == "0"
    assert int(response["RateLimit-Reset"]) == 60

    refused = auth_client.get("/users/me")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retry_after"] == pytest.approx(1.0)
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit-Remaining"] == "0"

    clock.advance(1)
    assert auth_client.get("/users/me").status_code == 200
    assert auth_client.get("/users/me").status_code == 429


def test_rest_limit_is_per_user(auth_client, make_user, token_for, api_client):
    for _ in range(60):
        auth_client.get("/users/me")
    assert auth_client.get("/users/me").status_code == 429
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user('other'))}")
    assert api_client.get("/users/me").status_code == 200


def test_rest_limit_applies_after_authentication(api_client, clock):
    # Unauthenticated requests are answered 401 and never touch a user's bucket.
    for _ in range(70):
        assert api_client.get("/users/me").status_code == 401


def test_rest_limit_is_configurable(auth_client, clock, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "rest": (3, 0.5)}
    assert [auth_client.get("/users/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    clock.advance(2)
    assert auth_client.get("/users/me").status_code == 200


def login(client, email, password="wrong-password-123", address="10.0.0.1", **extra):
    return client.post(
        "/auth/login", {"email": email, "password": password}, format="json", REMOTE_ADDR=address, **extra
    )


def test_login_limited_per_client_address(api_client, user, clock):
    # Ten attempts a minute from one address, whatever emails it tries.
    statuses = [login(api_client, f"victim{n}@example.com").status_code for n in range(11)]
    assert statuses == [401] * 10 + [429]
    assert login(api_client, "x@example.com", address="10.0.0.2").status_code == 401  # other address
    clock.advance(6)
    assert login(api_client, "y@example.com").status_code == 401


def test_login_limited_per_target_email_from_many_addresses(api_client, user, clock):
    statuses = [login(api_client, "alice@example.com", address=f"10.0.1.{n}").status_code for n in range(6)]
    assert statuses == [401] * 5 + [429]
    # Even the right password waits: the attacker must not learn it was right.
    right = login(api_client, "alice@example.com", TEST_PASSWORD, address="10.0.2.1")
    assert right.status_code == 429


def test_login_limit_answers_the_same_for_existing_and_unknown_accounts(api_client, user):
    existing = [login(api_client, "ALICE@example.com", address=f"10.1.0.{n}") for n in range(6)]
    unknown = [login(api_client, "nobody@example.com", address=f"10.2.0.{n}") for n in range(6)]
    assert [r.status_code for r in existing] == [r.status_code for r in unknown]
    assert [r.json() for r in existing] == [r.json() for r in unknown]


def test_forged_forwarded_for_does_not_escape_the_address_limit(api_client, user):
    statuses = [
        login(api_client, f"v{n}@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(11)
    ]
    assert statuses[-1] == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_used(api_client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    statuses = [
        login(api_client, f"v{n}@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(11)
    ]
    assert statuses[-1] == 401  # each forwarded client has its own bucket


def test_register_limited_per_address(api_client):
    def register(n):
        body = {"username": f"user{n}", "email": f"user{n}@example.com", "password": "a-long-passphrase"}
        return api_client.post("/auth/register", body, format="json", REMOTE_ADDR="10.9.9.9").status_code

    assert [register(n) for n in range(11)] == [201] * 10 + [429]


def test_password_change_guessing_is_limited(auth_client):
    body = {"current_password": "guess-guess-guess", "new_password": "a-brand-new-passphrase"}
    statuses = [auth_client.post("/users/me/password", body, format="json").status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]


def test_successful_logins_never_spend_the_email_budget(api_client, user):
    statuses = [
        login(api_client, "alice@example.com", TEST_PASSWORD, address=f"10.3.0.{n}").status_code for n in range(8)
    ]
    assert statuses == [200] * 8
    # ...so an attacker's failures are what the budget counts.
    failures = [login(api_client, "alice@example.com", address=f"10.4.0.{n}").status_code for n in range(6)]
    assert failures == [401] * 5 + [429]


def test_register_limited_per_email(api_client):
    def register(n):
        body = {"username": f"probe{n}", "email": "target@example.com", "password": "a-long-passphrase"}
        return api_client.post("/auth/register", body, format="json", REMOTE_ADDR=f"10.5.0.{n}").status_code

    assert [register(n) for n in range(6)] == [201, 400, 400, 400, 400, 429]
