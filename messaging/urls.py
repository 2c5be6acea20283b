from django.urls import path

from messaging import views

urlpatterns = [
    path("chats/<str:user_id>", views.ChatHistoryView.as_view(), name="chat-history"),
    path("messages/search", views.MessageSearchView.as_view(), name="message-search"),
    path("messages/<uuid:message_id>", views.MessageEditView.as_view(), name="message-edit"),
    path("messages/<uuid:message_id>/delete", views.MessageDeleteView.as_view(), name="message-delete"),
    path("messages/<uuid:message_id>/read", views.MessageReadView.as_view(), name="message-read"),
    path("messages/<uuid:message_id>/edits", views.MessageEditsView.as_view(), name="message-edits"),
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path("conversations/<uuid:conversation_id>", views.ConversationDetailView.as_view(), name="conversation"),
    path("conversations/<uuid:conversation_id>/read", views.ConversationReadView.as_view(), name="conversation-read"),
    path(
        "conversations/<uuid:conversation_id>/messages",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<uuid:conversation_id>/members",
        views.ConversationMembersView.as_view(),
        name="conversation-members",
    ),
    path(
        "conversations/<uuid:conversation_id>/members/<uuid:user_id>",
        views.ConversationMemberView.as_view(),
        name="conversation-member",
    ),
    path("conversations/<uuid:conversation_id>/mute", views.ConversationMuteView.as_view(), name="conversation-mute"),
    path(
        "conversations/<uuid:conversation_id>/leave", views.ConversationLeaveView.as_view(), name="conversation-leave"
    ),
    path("users/search", views.UserSearchView.as_view(), name="user-search"),
    path("attachments", views.AttachmentUploadView.as_view(), name="attachments"),
    path("attachments/<uuid:attachment_id>", views.AttachmentDownloadView.as_view(), name="attachment"),
]
