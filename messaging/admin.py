from django.contrib import admin

from messaging.models import Attachment, Conversation, Membership, Message


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
    """Browse and search only: messages change through messaging.services, which
    enforce the rules and tell every device; a raw admin edit would do neither."""

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


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "sender", "conversation", "short_content", "created_at", "edited_at", "is_deleted")
    list_filter = ("is_deleted", EditedFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("content", "sender__username", "sender__email", "=id")
    list_select_related = ("sender", "conversation")
    raw_id_fields = ("sender", "conversation")
    readonly_fields = ("id", "seq", "created_at", "client_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)

    inlines = [AttachmentInline]

    @admin.display(description="content")
    def short_content(self, message: Message) -> str:
        return message.content if len(message.content) <= 80 else message.content[:79] + "…"


class MembershipInline(ReadOnlyMixin, admin.TabularInline):
    model = Membership
    raw_id_fields = ("user",)
    fields = ("user", "role", "joined_at", "left_at", "left_seq", "delivered_seq", "read_seq")
    extra = 0


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "title", "user_a", "user_b", "last_message_at", "last_seq")
    list_filter = ("kind",)
    search_fields = ("=id", "title", "user_a__username", "user_b__username")
    raw_id_fields = ("user_a", "user_b")
    readonly_fields = ("id", "last_seq", "last_message_at", "created_at")
    inlines = [MembershipInline]


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "content_type", "size", "uploader", "message", "created_at")
    list_filter = ("content_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("name", "uploader__username", "=id")
    list_select_related = ("uploader", "message")
    raw_id_fields = ("uploader", "message")
