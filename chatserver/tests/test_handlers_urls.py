"""URLs of the handler tests' blocking views (a URLconf must be a module)."""

from chatserver.tests.test_handlers import blocking_urls as urlpatterns  # noqa: F401
