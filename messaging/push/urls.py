from django.urls import path

from messaging.push import views

urlpatterns = [
    path("push/targets", views.PushTargetListView.as_view(), name="push-targets"),
    path("push/targets/<uuid:target_id>", views.PushTargetView.as_view(), name="push-target"),
    path("push/vapid-public-key", views.VapidKeyView.as_view(), name="push-vapid-key"),
]
