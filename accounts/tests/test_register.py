import json

import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db

URL = "/auth/register"
GOOD = {"username": "johndoe", "email": "John@Example.com", "password": "securepassword123"}


def register(client, body, **kwargs):
    return client.post(URL, body, format="json", **kwargs)


def test_register_creates_user_with_empty_201(api_client):
    response = register(api_client, GOOD)
    assert response.status_code == 201
    assert response.content == b""
    user = User.objects.get(username="johndoe")
    assert user.email == "john@example.com"  # stored lower-case
    assert user.password.startswith("bcrypt_sha256$")
    assert user.check_password("securepassword123")
    assert user.created is not None and user.updated is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.com", "password": "securepassword123"}, "username"),
        ({"username": "bob", "password": "securepassword123"}, "email"),
        ({"username": "bob", "email": "a@example.com"}, "password"),
        ({"username": "   ", "email": "a@example.com", "password": "securepassword123"}, "username"),
        ({"username": "bob", "email": "", "password": "securepassword123"}, "email"),
        ({"username": "bob", "email": "a@example.com", "password": ""}, "password"),
        ({"username": None, "email": "a@example.com", "password": "securepassword123"}, "username"),
    ],
    ids=[
        "missing-username",
        "missing-email",
        "missing-password",
        "blank-username",
        "blank-email",
        "blank-password",
        "null-username",
    ],
)
def test_missing_or_blank_fields(api_client, body, field):
    response = register(api_client, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}: ")
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com"])
def test_invalid_email(api_client, email):
    response = register(api_client, {**GOOD, "email": email})
    assert response.status_code == 400
    assert response.json()["field"] == "email"
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "username",
    ["x" * 33, "ab", "john doe", "john@doe", "jöhn", "john/doe", "<script>"],
    ids=["too-long", "too-short", "space", "at-sign", "non-ascii", "slash", "markup"],
)
def test_invalid_username(api_client, username):
    response = register(api_client, {**GOOD, "username": username})
    assert response.status_code == 400
    assert response.json()["field"] == "username"
    assert not User.objects.exists()


@pytest.mark.parametrize("username", ["abc", "x" * 32, "john.doe_1-2"])
def test_username_allowed_characters_and_length(api_client, username):
    assert register(api_client, {**GOOD, "username": username}).status_code == 201


def test_username_taken_case_insensitive(api_client):
    assert register(api_client, GOOD).status_code == 201
    response = register(api_client, {**GOOD, "username": "JohnDoe", "email": "other@example.com"})
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"
    assert User.objects.count() == 1


def test_email_taken_case_insensitive(api_client):
    assert register(api_client, GOOD).status_code == 201
    response = register(api_client, {**GOOD, "username": "other", "email": "JOHN@example.COM"})
    assert response.status_code == 400
    assert response.json()["code"] == "email_taken"
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    ["short1!", "password123", "12345678901", "johndoe1234"],
    ids=["too-short", "common", "numeric", "similar-to-username"],
)
def test_password_rejected_by_django_validators(api_client, password):
    response = register(api_client, {**GOOD, "password": password})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "weak_password"
    assert body["field"] == "password"
    assert body["detail"]
    assert not User.objects.exists()


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "42", "null", "true"])
def test_body_not_a_json_object(api_client, payload):
    response = api_client.post(URL, payload, content_type="application/json")
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    assert not User.objects.exists()


def test_malformed_json(api_client):
    response = api_client.post(URL, '{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_wrong_content_type_is_json_415(api_client):
    response = api_client.post(URL, "username=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "detail" in response.json()


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_non_string_values(api_client, field):
    response = register(api_client, {**GOOD, field: {"nested": True}})
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_extra_fields_cannot_grant_privileges(api_client):
    body = {**GOOD, "is_staff": True, "is_superuser": True, "id": "00000000-0000-0000-0000-000000000001"}
    assert register(api_client, body).status_code == 201
    user = User.objects.get()
    assert not user.is_staff and not user.is_superuser
    assert str(user.id) != body["id"]


def test_register_needs_no_token_and_ignores_a_bad_one(api_client):
    response = register(api_client, GOOD, HTTP_AUTHORIZATION="Bearer garbage")
    assert response.status_code == 201


def test_response_is_not_json_decoded_as_html(api_client):
    response = register(api_client, {})
    assert response["Content-Type"] == "application/json"
    json.loads(response.content)
