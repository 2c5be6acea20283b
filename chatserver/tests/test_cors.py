"""CORS for browser apps on other origins (CORS_ALLOWED_ORIGINS)."""

import pytest

APP = "https://app.example.com"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allowed_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]


def test_preflight_allows_the_bearer_header(api_client):
    response = api_client.options(
        "/users/me",
        HTTP_ORIGIN=APP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "PUT" in response["Access-Control-Allow-Methods"]


def test_responses_and_errors_carry_the_headers(auth_client, api_client):
    response = auth_client.get("/users/me", HTTP_ORIGIN=APP)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert "X-Request-ID" in response["Access-Control-Expose-Headers"]
    # An error the app can read: a 401 with its JSON body.
    refused = api_client.get("/users/me", HTTP_ORIGIN=APP)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == APP


def test_other_origins_get_no_cors_headers(auth_client):
    response = auth_client.get("/users/me", HTTP_ORIGIN="https://evil.example.net")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
