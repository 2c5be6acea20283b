from django.urls import path

from messaging.attachments.views import AttachmentDownloadView, AttachmentUploadView
from messaging.conversations.views import ConversationDetailView, ConversationListView, ConversationMuteView
from messaging.groups.views import ConversationLeaveView, ConversationMembersView, ConversationMemberView
from messaging.messages.views import (
    ChatHistoryView,
    ConversationMessagesView,
    MessageDeleteView,
    MessageEditsView,
    MessageEditView,
)
from messaging.receipts.views import ConversationReadView, MessageReadView
from messaging.search.views import MessageSearchView, UserSearchView

urlpatterns = [
    path("chats/<str:user_id>", ChatHistoryView.as_view(), name="chat-history"),
    path("messages/search", MessageSearchView.as_view(), name="message-search"),
    path("messages/<uuid:message_id>", MessageEditView.as_view(), name="message-edit"),
    path("messages/<uuid:message_id>/delete", MessageDeleteView.as_view(), name="message-delete"),
    path("messages/<uuid:message_id>/read", MessageReadView.as_view(), name="message-read"),
    path("messages/<uuid:message_id>/edits", MessageEditsView.as_view(), name="message-edits"),
    path("conversations", ConversationListView.as_view(), name="conversations"),
    path("conversations/<uuid:conversation_id>", ConversationDetailView.as_view(), name="conversation"),
    path("conversations/<uuid:conversation_id>/read", ConversationReadView.as_view(), name="conversation-read"),
    path(
        "conversations/<uuid:conversation_id>/messages",
        ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<uuid:conversation_id>/members",
        ConversationMembersView.as_view(),
        name="conversation-members",
    ),
    path(
        "conversations/<uuid:conversation_id>/members/<uuid:user_id>",
        ConversationMemberView.as_view(),
        name="conversation-member",
    ),
    path("conversations/<uuid:conversation_id>/mute", ConversationMuteView.as_view(), name="conversation-mute"),
    path("conversations/<uuid:conversation_id>/leave", ConversationLeaveView.as_view(), name="conversation-leave"),
    path("users/search", UserSearchView.as_view(), name="user-search"),
    path("attachments", AttachmentUploadView.as_view(), name="attachments"),
    path("attachments/<uuid:attachment_id>", AttachmentDownloadView.as_view(), name="attachment"),
]
