import pytest

from accounts.models import User
from conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db

ME = "/users/me"
UPDATE = "/users/me/update"


def test_me_returns_seed_shape(auth_client, user):
    response = auth_client.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "username", "email", "created", "read_receipts", "push_show_content"}
    assert body["id"] == str(user.id)
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["created"].endswith("Z")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_both_fields(auth_client, user, method):
    response = getattr(auth_client, method)(
        UPDATE, {"username": "alice2", "email": "Alice2@Example.com"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "username", "email", "updated", "read_receipts", "push_show_content"}
    assert body["username"] == "alice2"
    assert body["email"] == "alice2@example.com"
    user.refresh_from_db()
    assert (user.username, user.email) == ("alice2", "alice2@example.com")


def test_update_one_field_keeps_the_other(auth_client, user):
    response = auth_client.put(UPDATE, {"email": "new@example.com"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.username == "alice"
    assert user.email == "new@example.com"


def test_update_bumps_updated_timestamp(auth_client, user):
    before = user.updated
    auth_client.put(UPDATE, {"username": "alice3"}, format="json")
    user.refresh_from_db()
    assert user.updated > before


def test_changing_case_of_own_username_is_allowed(auth_client, user):
    assert auth_client.put(UPDATE, {"username": "Alice"}, format="json").status_code == 200


def test_nothing_to_update(auth_client):
    response = auth_client.put(UPDATE, {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "nothing_to_update"


def test_only_unknown_fields_is_nothing_to_update(auth_client, user):
    response = auth_client.put(UPDATE, {"password": "another-strong-pass-1", "id": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "nothing_to_update"
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)


def test_password_id_and_flags_never_change(auth_client, user):
    original_id = user.id
    body = {
        "username": "alice4",
        "password": "another-strong-pass-1",
        "id": "00000000-0000-0000-0000-000000000001",
        "is_staff": True,
        "created": "2000-01-01T00:00:00Z",
    }
    assert auth_client.put(UPDATE, body, format="json").status_code == 200
    user.refresh_from_db()
    assert user.id == original_id
    assert user.check_password(TEST_PASSWORD)
    assert not user.is_staff
    assert user.created.year != 2000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "bad name"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "x" * 33}, "username"),
        ({"email": "nope"}, "email"),
        ({"email": None}, "email"),
    ],
)
def test_invalid_values(auth_client, user, body, field):
    response = auth_client.put(UPDATE, body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    user.refresh_from_db()
    assert (user.username, user.email) == ("alice", "alice@example.com")


def test_taken_username_case_insensitive(auth_client, make_user):
    make_user("Bob", "bob@example.com")
    response = auth_client.put(UPDATE, {"username": "bob"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"


def test_taken_email_case_insensitive(auth_client, user, make_user):
    make_user("bob", "bob@example.com")
    response = auth_client.patch(UPDATE, {"email": "BOB@example.com", "username": "alice9"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "email_taken"
    user.refresh_from_db()
    assert user.username == "alice"  # nothing partially applied


def test_update_requires_auth(api_client):
    assert api_client.put(UPDATE, {"username": "x"}, format="json").status_code == 401


def test_body_not_an_object(auth_client):
    response = auth_client.put(UPDATE, "[]", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_me_post_is_405_json(auth_client):
    response = auth_client.post(ME, {}, format="json")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_user_model_rules(db):
    user = User.objects.create_user(username="Carol", email="CAROL@Example.com", password=TEST_PASSWORD)
    assert user.email == "carol@example.com"
    assert str(user) == "Carol"
    assert User.objects.get_by_natural_key("Carol@EXAMPLE.com") == user


def test_read_receipts_setting(auth_client, user):
    response = auth_client.patch(UPDATE, {"read_receipts": False}, format="json")
    assert response.status_code == 200 and response.json()["read_receipts"] is False
    user.refresh_from_db()
    assert user.read_receipts is False
    assert auth_client.patch(UPDATE, {"read_receipts": "maybe"}, format="json").status_code == 400
