import math

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm

from accounts import services
from accounts.exceptions import InvalidCredentials
from accounts.models import User
from chatserver import ratelimit
from chatserver.client_address import request_client_address
from chatserver.errors import RateLimited


class RateLimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login takes the same email and password as ``POST /auth/login``
    and is limited the same way, in the same buckets (in Redis when configured):
    attempts per client address, and failed attempts per email, which lift
    within minutes once the failures stop and never count a right password.
    """

    def clean(self) -> dict:
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is None or not password:
            return self.cleaned_data
        address = ratelimit.hit("auth_ip", request_client_address(self.request))
        if not address.allowed:
            raise self._too_many(address.retry_after)
        try:
            self.user_cache = services.user_authenticate(email=email, password=password)
        except RateLimited as error:
            raise self._too_many(error.retry_after) from None
        except InvalidCredentials:
            raise self.get_invalid_login_error() from None
        self.confirm_login_allowed(self.user_cache)  # active staff only
        return self.cleaned_data

    @staticmethod
    def _too_many(retry_after: float) -> forms.ValidationError:
        return forms.ValidationError(
            "Too many login attempts. Try again in %(seconds)d seconds.",
            code="rate_limited",
            params={"seconds": max(1, math.ceil(retry_after))},
        )


admin.site.login_form = RateLimitedAdminAuthenticationForm


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class RevokingPasswordChangeForm(AdminPasswordChangeForm):
    """A password set by an admin revokes the user's tokens, like a self-service change."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            services.user_revoke_tokens(user)
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    change_password_form = RevokingPasswordChangeForm
    list_display = ("username", "email", "is_active", "is_staff", "created", "last_seen")
    list_filter = ("is_active", "is_staff", "is_superuser", "created")
    search_fields = ("username", "email", "=id")
    ordering = ("-created",)
    show_full_result_count = False
    actions = ["deactivate"]
    readonly_fields = ("id", "created", "updated", "last_login", "last_seen", "token_version")
    # messaging.admin extends this page with presence and conversations.
    fieldsets = (
        (None, {"fields": ("id", "username", "email", "password")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Sessions", {"fields": ("last_seen", "last_login", "token_version")}),
        ("Dates", {"fields": ("created", "updated")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),)

    def has_deactivate_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_user")

    @admin.action(description="Deactivate (revokes their tokens, closes their sockets)", permissions=["deactivate"])
    def deactivate(self, request, queryset) -> None:
        done = [user for user in queryset if services.user_deactivate(user)]
        if done:
            LogEntry.objects.log_actions(request.user.pk, done, CHANGE, change_message="Deactivated")
        self.message_user(request, f"Deactivated {len(done)} user(s); their sockets are closing.", messages.SUCCESS)

    def save_model(self, request, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivated user's open sockets close and their tokens stop working.
            services.user_revoke_tokens(obj)
