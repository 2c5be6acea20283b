from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from chatserver.metrics import metrics_view
from chatserver.views import client, favicon, healthz, readyz, service_worker

admin.site.site_header = "Chat server moderation"
admin.site.site_title = "Chat moderation"
admin.site.index_title = "Users, conversations and messages"

urlpatterns = [
    path("", client, name="client"),
    path("favicon.ico", favicon, name="favicon"),
    path("sw.js", service_worker, name="service-worker"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("accounts.urls")),
    path("", include("messaging.urls")),
    path("", include("messaging.push.urls")),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "chatserver.views.bad_request"
handler403 = "chatserver.views.permission_denied"
handler404 = "chatserver.views.not_found"
handler500 = "chatserver.views.server_error"
