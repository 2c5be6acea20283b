from django.urls import path

from messaging import views

urlpatterns = [
    path("chats/<str:user_id>", views.ChatHistoryView.as_view(), name="chat-history"),
    path("messages/<uuid:message_id>", views.MessageEditView.as_view(), name="message-edit"),
    path("messages/<uuid:message_id>/delete", views.MessageDeleteView.as_view(), name="message-delete"),
    path("messages/<uuid:message_id>/edits", views.MessageEditsView.as_view(), name="message-edits"),
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path("conversations/<uuid:conversation_id>/read", views.ConversationReadView.as_view(), name="conversation-read"),
    path("users/search", views.UserSearchView.as_view(), name="user-search"),
]
