import logging

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/nope", "/users/me/nope", "/auth/register/", "/chats"])
def test_unknown_paths_are_json_404(api_client, path, debug):
    with override_settings(DEBUG=debug):
        response = api_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not Found.", "code": "not_found"}


def test_wrong_method_is_json_405(api_client):
    response = api_client.delete("/auth/register")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_disallowed_host_is_json_400(api_client):
    with override_settings(DEBUG=False, ALLOWED_HOSTS=["chat.example.com"]):
        response = api_client.get("/users/me", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


NESTED = "[" * 1000 + "]" * 1000  # 2 KB; a RecursionError in Python's own parser
DEEP = "[" * 32 + "]" * 32  # as deep as the API takes


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("post", "/auth/login", False),
        ("post", "/auth/register", False),
        ("put", "/users/me/update", True),
        ("post", "/users/me/password", True),
        ("post", "/conversations", True),
        ("post", "/conversations/00000000-0000-0000-0000-000000000001/read", True),
        ("patch", "/messages/00000000-0000-0000-0000-000000000001", True),
    ],
)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (NESTED, "invalid_json"),
        ('{"email": ' + NESTED + ', "password": "x", "username": ' + NESTED + "}", "invalid_json"),
        ('{"email": ' + DEEP + "}", "invalid_json"),  # 33 levels with the object
        ('{"email": 1e999, "password": "x"}', "invalid_json"),
        ('{"email": -1e999}', "invalid_json"),
        ("[NaN]", "invalid_json"),
        # Parsed, and refused by the endpoint's own checks like any wrong shape.
        ('{"email": ' + DEEP[1:-1] + ', "password": "x"}', None),
    ],
    ids=["nested", "nested-fields", "too-deep", "huge-number", "huge-negative", "nan", "deep"],
)
def test_malformed_json_is_400_on_every_json_endpoint(
    api_client, user, token_for, method, path, authenticated, body, code, caplog
):
    if authenticated:
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    response = getattr(api_client, method)(path, body, content_type="application/json")
    assert response.status_code in ((400,) if code else (400, 404))  # 404: the route's id names nothing
    if code:
        assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_openapi_schema_lists_the_api(api_client):
    response = api_client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/auth/register", "/auth/login", "/users/me", "/users/me/update"):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/users/me/update"]) >= {"put", "patch"}
    assert "401" in schema["paths"]["/users/me"]["get"]["responses"]


def test_docs_page_loads_no_asset_from_the_internet(api_client):
    response = api_client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_admin_lists_users_with_search_and_filters(client, make_user):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    make_user("findme", "findme@example.com")
    make_user("hidden", "hidden@example.com")
    client.force_login(admin)
    response = client.get("/admin/accounts/user/", {"q": "findme", "is_staff__exact": "0"})
    assert response.status_code == 200
    assert b"findme@example.com" in response.content
    assert b"hidden@example.com" not in response.content
    staff_only = client.get("/admin/accounts/user/", {"is_staff__exact": "1"})
    assert b"findme@example.com" not in staff_only.content


def test_admin_add_user_form_uses_bcrypt(client, make_user):
    from accounts.models import User

    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "added",
            "email": "Added@Example.com",
            "password1": "a-strong-pass-42",
            "password2": "a-strong-pass-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    added = User.objects.get(username="added")
    assert added.email == "added@example.com"
    assert added.password.startswith("bcrypt_sha256$")


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "bearerAuth" in (tmp_path / "schema.yaml").read_text()


def test_admin_messages_search_and_filters(client, make_user):
    from messaging.services import message_edit, message_send

    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    alice, bob = make_user("alice"), make_user("bob")
    plain = message_send(sender=alice, to=str(bob.id), content="plain words").message
    edited = message_send(sender=bob, to=str(alice.id), content="first draft").message
    message_edit(user=bob, message_id=edited.id, content="second draft")
    client.force_login(admin)

    def listed(**params) -> str:
        response = client.get("/admin/messaging/message/", params)
        assert response.status_code == 200
        return response.content.decode()

    assert "plain words" in listed(q="plain") and "second draft" not in listed(q="plain")
    assert "second draft" in listed(q="bob") and "plain words" not in listed(q="bob")
    assert "second draft" in listed(edited="yes") and "plain words" not in listed(edited="yes")
    assert "plain words" in listed(is_deleted__exact="0")
    assert client.get(f"/admin/messaging/message/{plain.id}/change/").status_code == 200  # a view page
    assert client.get("/admin/messaging/conversation/").status_code == 200
    # Read-only: changes go through the services, which tell every device.
    client.post(f"/admin/messaging/message/{plain.id}/change/", {"content": "rewritten"})
    plain.refresh_from_db()
    assert plain.content == "plain words"
    assert client.get("/admin/messaging/message/add/").status_code == 403


def test_admin_groups_and_attachments_pages(client, make_user):
    from messaging.services import group_create

    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    alice, bob = make_user("alice"), make_user("bob")
    group = group_create(creator=alice, title="Admins look", members=[bob.id])
    client.force_login(admin)
    page = client.get(f"/admin/messaging/conversation/{group.id}/change/")
    assert page.status_code == 200 and b"Admins look" in page.content and b"admin" in page.content
    assert client.get("/admin/messaging/attachment/").status_code == 200
    assert client.get("/admin/messaging/conversation/", {"kind__exact": "group"}).status_code == 200


def test_favicon_points_at_the_client_icon(api_client):
    """Pages that name no icon (the admin, the API docs) get one instead of a 404."""
    response = api_client.get("/favicon.ico")
    assert response.status_code == 302
    icon = api_client.get(response["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)
