"""The admin as a moderation desk: read everything, change through the services.

Messages and conversations change only through ``messaging.services`` (which
enforce the rules and tell every device); a raw admin edit would do neither,
so the models are read-only here and the one change a moderator makes,
"delete for everyone", is an action that calls the service and is recorded
in the admin log. Deleted content stays hidden, as the API promises, unless
a superuser asks for it (``?reveal=1`` on a message's page). The account page
(accounts.admin) is extended here with the user's presence and conversations.
"""

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from accounts.admin import UserAdmin
from accounts.models import User
from messaging import services
from messaging.models import Attachment, Conversation, Membership, Message
from messaging.presence.registry import get_presence
from messaging.rules import is_current

EXCERPT_LENGTH = 80
HIDDEN = "(deleted: content hidden)"
RECENT_MESSAGES = 50
CONVERSATIONS_SHOWN = 50


def excerpt(text: str, length: int = EXCERPT_LENGTH) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def shown_excerpt(message: Message) -> str:
    """A message's excerpt as the admin shows it: deleted content stays hidden."""
    return HIDDEN if message.is_deleted else excerpt(message.content)


def conversation_name(conversation: Conversation) -> str:
    """ "alice ↔ bob" for a direct conversation (user_a/user_b selected), the title for a group."""
    if conversation.kind == Conversation.Kind.GROUP:
        return conversation.title or "(untitled group)"
    return f"{conversation.user_a} ↔ {conversation.user_b}"


def changelist_url(model, **filters: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + "?" + urlencode(filters)


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


class EditedFilter(admin.SimpleListFilter):
    title = "edited"
    parameter_name = "edited"

    def lookups(self, request, model_admin):
        return [("yes", "Edited"), ("no", "Not edited")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(edited_at__isnull=self.value() == "no")
        return queryset


class ReadOnlyMixin:
    """Browse and search only (see the module docstring)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AttachmentInline(ReadOnlyMixin, admin.TabularInline):
    model = Attachment
    fields = ("name", "content_type", "size", "width", "height", "created_at")
    extra = 0


# Links from a conversation's or a user's page filter the message list by these.
LINKED_FILTERS = ("conversation__id__exact", "sender__id__exact")


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("route", "excerpt", "created_at", "edited", "deleted")
    list_display_links = ("excerpt",)
    list_filter = (
        "is_deleted",
        EditedFilter,
        "conversation__kind",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("content", "sender__username", "sender__email", "=id", "=conversation__id")
    # Sender, conversation and both members of a direct one: one query per page, whatever its length.
    list_select_related = ("sender", "conversation__user_a", "conversation__user_b")
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page
    actions = ["delete_for_everyone"]
    fields = ("id", "route", "sender", "conversation_link", "seq", "shown_content", "created_at", "edited_at")
    fields += ("is_deleted", "deleted_at", "client_id")
    inlines = [AttachmentInline]

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        return lookup in LINKED_FILTERS or super().lookup_allowed(lookup, value, request)

    @admin.display(description="from → to")
    def route(self, message: Message) -> str:
        conversation = message.conversation
        if conversation.kind == Conversation.Kind.GROUP:
            return f"{message.sender} → {conversation_name(conversation)}"
        other = conversation.user_b if conversation.user_a_id == message.sender_id else conversation.user_a
        return f"{message.sender} → {other}"

    @admin.display(description="content")
    def excerpt(self, message: Message) -> str:
        return shown_excerpt(message)

    @admin.display(description="edited", boolean=True)
    def edited(self, message: Message) -> bool:
        return message.edited_at is not None

    @admin.display(description="deleted", boolean=True, ordering="is_deleted")
    def deleted(self, message: Message) -> bool:
        return message.is_deleted

    @admin.display(description="conversation")
    def conversation_link(self, message: Message) -> str:
        return format_html(
            '<a href="{}">{}</a>', change_url(message.conversation), conversation_name(message.conversation)
        )

    @admin.display(description="content")
    def shown_content(self, message: Message) -> str:
        return HIDDEN if message.is_deleted else message.content

    @admin.display(description="content")
    def content_for_superuser(self, message: Message) -> str:
        if not message.is_deleted:
            return message.content
        return format_html('{} <a href="?reveal=1">Show it</a> (superusers only)', HIDDEN)

    @admin.display(description="content")
    def revealed_content(self, message: Message) -> str:
        if not message.is_deleted:
            return message.content
        return format_html("{} <strong>(deleted; shown to a superuser)</strong>", message.content)

    def get_fields(self, request: HttpRequest, obj=None) -> tuple:
        """Deleted content only for a superuser who asks (``?reveal=1``)."""
        shown = "shown_content"
        if request.user.is_superuser:
            shown = "revealed_content" if request.GET.get("reveal") == "1" else "content_for_superuser"
        return tuple(shown if name == "shown_content" else name for name in self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("sender", "conversation__user_a", "conversation__user_b")

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("messaging.delete_message")

    @admin.action(description="Delete for everyone (every device is told)", permissions=["moderate"])
    def delete_for_everyone(self, request: HttpRequest, queryset: QuerySet) -> None:
        deleted = 0
        for message in queryset.select_related("conversation"):
            if services.message_delete_for_everyone(message):
                deleted += 1
                LogEntry.objects.log_actions(
                    request.user.pk, [message], CHANGE, change_message="Deleted for everyone", single_object=True
                )
        skipped = queryset.count() - deleted
        self.message_user(request, f"Deleted {deleted} message(s) for everyone.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} were deleted already.", messages.INFO)


class MembershipInline(ReadOnlyMixin, admin.TabularInline):
    model = Membership
    fields = ("user", "role", "joined_at", "left_at", "read_seq", "delivered_seq")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "kind", "members", "last_seq", "last_message_at")
    list_filter = ("kind", ("last_message_at", admin.DateFieldListFilter))
    search_fields = ("=id", "title", "user_a__username", "user_b__username", "memberships__user__username")
    list_select_related = ("user_a", "user_b")
    ordering = ("-last_message_at",)
    show_full_result_count = False
    fields = ("name", "id", "kind", "title", "user_a", "user_b", "created_by", "created_at", "last_seq")
    fields += ("last_message_at",)
    fields += ("recent_messages",)
    readonly_fields = fields
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))

    @admin.display(description="conversation")
    def name(self, conversation: Conversation) -> str:
        return conversation_name(conversation)

    @admin.display(description="members", ordering="member_count")
    def members(self, conversation: Conversation) -> int:
        return conversation.member_count

    @admin.display(description=f"messages (the last {RECENT_MESSAGES}, in order)")
    def recent_messages(self, conversation: Conversation) -> str:
        recent = list(conversation.messages.select_related("sender").order_by("-seq")[:RECENT_MESSAGES])[::-1]
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td></tr>',
            (
                (
                    m.seq,
                    m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    m.sender,
                    change_url(m),
                    HIDDEN if m.is_deleted else excerpt(m.content),
                )
                for m in recent
            ),
        )
        every = changelist_url(Message, conversation__id__exact=conversation.pk)
        return format_html(
            "<table><thead><tr><th>#</th><th>time</th><th>from</th><th>content</th></tr></thead>"
            '<tbody>{}</tbody></table><p><a href="{}">All {} messages, searchable →</a></p>',
            rows,
            every,
            conversation.last_seq,
        )


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "content_type", "size", "uploader", "message", "created_at")
    list_filter = ("content_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("name", "uploader__username", "=id")
    list_select_related = ("uploader", "message")
    raw_id_fields = ("uploader", "message")


def _with_chat_fields(fieldsets: tuple) -> tuple:
    """The account page's fieldsets, with presence among the sessions and a chat section."""
    shown = []
    for name, options in fieldsets:
        if name == "Sessions":
            options = {**options, "fields": ("online", *options["fields"])}
        shown.append((name, options))
        if name == "Sessions":
            shown.append(("Chat", {"fields": ("their_conversations", "messages_sent")}))
    return tuple(shown)


admin.site.unregister(User)


@admin.register(User)
class ChatUserAdmin(UserAdmin):
    """The account page (accounts.admin) with what messaging knows of the user."""

    readonly_fields = (*UserAdmin.readonly_fields, "online", "their_conversations", "messages_sent")
    fieldsets = _with_chat_fields(UserAdmin.fieldsets)

    @admin.display(description="online now", boolean=True)
    def online(self, user: User) -> bool:
        return user.pk in get_presence().online([user.pk])

    @admin.display(description="conversations")
    def their_conversations(self, user: User) -> str:
        memberships = (
            Membership.objects.filter(user=user)
            .select_related("conversation__user_a", "conversation__user_b")
            .order_by("-conversation__last_message_at")[:CONVERSATIONS_SHOWN]
        )
        return (
            format_html_join(
                mark_safe("<br>"),
                '<a href="{}">{}</a> ({}{})',
                (
                    (
                        change_url(m.conversation),
                        conversation_name(m.conversation),
                        m.role,
                        "" if is_current(m) else ", left",
                    )
                    for m in memberships
                ),
            )
            or "none"
        )

    @admin.display(description="messages sent")
    def messages_sent(self, user: User) -> str:
        return format_html('<a href="{}">Their messages →</a>', changelist_url(Message, sender__id__exact=user.pk))
