from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="register"),
    path("auth/login", views.LoginView.as_view(), name="login"),
    path("users/me", views.MeView.as_view(), name="me"),
    path("users/me/update", views.MeUpdateView.as_view(), name="me-update"),
    path("users/me/password", views.PasswordChangeView.as_view(), name="me-password"),
    path("ws/ticket", views.WebSocketTicketView.as_view(), name="ws-ticket"),
]
