"""The admin's login form is limited like POST /auth/login, in the same buckets."""

import pytest

from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def staff(make_user):
    user = make_user("root", "root@example.com")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def admin_login(client, email: str, password: str, address: str = "10.0.0.1"):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_right_password_logs_in(client, staff):
    assert logged_in(admin_login(client, "root@example.com", TEST_PASSWORD))


def test_failed_passwords_per_email_are_limited_even_from_many_addresses(client, staff):
    """25 wrong passwords used to be answered normally; now the email's failure
    budget (burst 5) runs out, and while it holds the right password is refused
    too, with the same answer (no oracle)."""
    responses = [admin_login(client, "root@example.com", f"guess-{n}", f"10.1.0.{n}") for n in range(25)]
    assert all(response.status_code == 200 for response in responses)
    assert [b"Too many login attempts" in r.content for r in responses] == [False] * 5 + [True] * 20
    refused = admin_login(client, "root@example.com", TEST_PASSWORD, "10.2.0.1")
    assert not logged_in(refused) and b"Too many login attempts" in refused.content


def test_the_lock_lifts_once_failures_stop(client, staff, clock):
    for n in range(6):
        admin_login(client, "root@example.com", f"guess-{n}", f"10.1.0.{n}")
    assert not logged_in(admin_login(client, "root@example.com", TEST_PASSWORD, "10.3.0.1"))
    clock.advance(3 * 60)  # one failure refills every 3 minutes (20 an hour)
    assert logged_in(admin_login(client, "root@example.com", TEST_PASSWORD, "10.3.0.2"))


def test_attempts_per_address_are_limited(client, staff):
    responses = [admin_login(client, f"probe{n}@example.com", "guess", "10.9.9.9") for n in range(11)]
    assert [b"Too many login attempts" in r.content for r in responses] == [False] * 10 + [True]
    # Another address is not affected: the limit cannot lock the real admin out.
    assert logged_in(admin_login(client, "root@example.com", TEST_PASSWORD, "10.8.8.8"))


def test_admin_and_api_logins_share_the_email_budget(client, api_client, staff):
    for n in range(5):
        admin_login(client, "root@example.com", f"guess-{n}", f"10.1.0.{n}")
    response = api_client.post(
        "/auth/login", {"email": "root@example.com", "password": TEST_PASSWORD}, format="json", REMOTE_ADDR="10.4.0.1"
    )
    assert response.status_code == 429


def test_non_staff_with_the_right_password_is_refused_without_spending_the_budget(client, make_user):
    make_user("plain", "plain@example.com")
    responses = [admin_login(client, "plain@example.com", TEST_PASSWORD, f"10.5.0.{n}") for n in range(8)]
    assert not any(logged_in(r) for r in responses)
    assert not any(b"Too many login attempts" in r.content for r in responses)
