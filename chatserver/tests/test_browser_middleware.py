"""Sessions, CSRF and session login exist for the admin and the API docs only."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from chatserver.middleware import BrowserAuthenticationMiddleware, BrowserSessionMiddleware


def view(request):
    return HttpResponse("ok")


@pytest.mark.parametrize(("path", "browser"), [("/users/me", False), ("/chats/x", False), ("/admin/", True)])
def test_session_and_user_only_on_browser_pages(path, browser):
    request = RequestFactory().get(path)
    BrowserSessionMiddleware(BrowserAuthenticationMiddleware(view))(request)
    assert hasattr(request, "session") is browser
    assert hasattr(request, "user") is browser


@pytest.mark.django_db
def test_the_admin_login_still_checks_csrf(client):
    client = type(client)(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "a@example.com", "password": "x"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_api_ignores_a_session_cookie(api_client, make_user, token_for):
    """A session cookie on an API request is not read (no session query) and no cookie is set."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = make_user()
    api_client.cookies["sessionid"] = "not-a-session"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    with CaptureQueriesContext(connection) as captured:
        response = api_client.get("/users/me")
    assert response.status_code == 200
    assert not response.cookies
    assert not [q for q in captured.captured_queries if "django_session" in q["sql"]]
