from django.urls import path

from messaging import views

urlpatterns = [
    path("chats/<str:user_id>", views.ChatHistoryView.as_view(), name="chat-history"),
    path("messages/<uuid:message_id>", views.MessageEditView.as_view(), name="message-edit"),
    path("messages/<uuid:message_id>/delete", views.MessageDeleteView.as_view(), name="message-delete"),
]
