"""The ASGI handler: a request's middleware chain and view run in one thread."""

import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import JsonResponse
from django.urls import path

from chatserver.handlers import SyncPipelineASGIHandler

seen: list[tuple[str, int]] = []


def recording_view(request):
    seen.append(("view", threading.get_ident()))
    return JsonResponse({"ok": True})


class RecordingMiddleware:
    """Sync-only, as most third-party middleware is."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        seen.append(("middleware", threading.get_ident()))
        return self.get_response(request)


urlpatterns = [path("record", recording_view)]


async def get(application, url: str) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(
        application,
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": url,
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        },
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    await communicator.wait(10)
    return start["status"], body["body"]


@pytest.mark.django_db(transaction=True)
async def test_middleware_and_view_share_one_thread_off_the_event_loop(settings):
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = [
        "chatserver.middleware.RequestIdMiddleware",  # sync and async capable
        "chatserver.tests.test_handlers.RecordingMiddleware",
        "django.middleware.common.CommonMiddleware",  # MiddlewareMixin
    ]
    seen.clear()
    status, body = await get(SyncPipelineASGIHandler(), "/record")
    assert status == 200 and body == b'{"ok": true}'
    (_, middleware_thread), (_, view_thread) = seen
    assert middleware_thread == view_thread != threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_the_project_middleware_still_shapes_errors_as_json():
    status, body = await get(SyncPipelineASGIHandler(), "/no-such-page")
    assert status == 404
    assert b'"detail"' in body and b'"code": "not_found"' in body


@pytest.mark.django_db(transaction=True)
async def test_request_signals_run_in_the_request_thread(settings):
    """close_old_connections runs on request_started/finished: in the thread
    that used the connection, or that thread keeps it out of the pool."""
    from django.core import signals

    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = []
    seen.clear()

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        status, _ = await get(SyncPipelineASGIHandler(), "/record")
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert status == 200
    assert [name for name, _ in seen] == ["started", "view", "finished"]
    assert len({thread for _, thread in seen}) == 1


released = threading.Event()


def blocking_view(request):
    return JsonResponse({"released": released.wait(10)})


def releasing_view(request):
    released.set()
    return JsonResponse({"ok": True})


blocking_urls = [path("block", blocking_view), path("release", releasing_view)]


@pytest.mark.django_db(transaction=True)
async def test_a_request_that_waits_does_not_hold_up_the_next(settings):
    import asyncio

    settings.ROOT_URLCONF = "chatserver.tests.test_handlers_urls"
    settings.MIDDLEWARE = []
    released.clear()
    handler = SyncPipelineASGIHandler()
    waiting = asyncio.create_task(get(handler, "/block"))
    await asyncio.sleep(0.1)
    assert await get(handler, "/release") == (200, b'{"ok": true}')
    assert await waiting == (200, b'{"released": true}')
