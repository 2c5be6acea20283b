import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 32
# ASCII only: no look-alike Unicode names. Letters, digits, "_", "." and "-".
USERNAME_PATTERN = rf"^[A-Za-z0-9_.-]{{{USERNAME_MIN_LENGTH},{USERNAME_MAX_LENGTH}}}\Z"
EMAIL_MAX_LENGTH = 254

username_validator = RegexValidator(
    USERNAME_PATTERN,
    message=(
        f"Username may contain only letters A-Z, digits, '_', '.' and '-', "
        f"{USERNAME_MIN_LENGTH}-{USERNAME_MAX_LENGTH} characters."
    ),
    code="invalid_username",
)


def normalize_email(email: str) -> str:
    """Emails are stored lower-case, so equality is case-insensitive everywhere."""
    return email.strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> "User":
        return self.get(email=normalize_email(email))

    def create_user(self, username: str, email: str, password: str | None = None, **extra) -> "User":
        user = self.model(username=username, email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(username, email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = models.CharField(
        max_length=USERNAME_MAX_LENGTH,
        validators=[username_validator],
        help_text=f"{USERNAME_MIN_LENGTH}-{USERNAME_MAX_LENGTH} characters: letters, digits, '_', '.', '-'.",
    )
    email = models.EmailField(
        max_length=EMAIL_MAX_LENGTH,
        unique=True,
        error_messages={"unique": "A user with this email already exists."},
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin site.")
    # Carried in every JWT; bumping it (password change, "log out everywhere")
    # revokes every token issued before.
    token_version = models.PositiveIntegerField(default=0, editable=False)
    # Whether others see when this user has read their messages.
    read_receipts = models.BooleanField(default=True)
    # Whether push notifications carry an excerpt of the message (off: they leave
    # this server for Google's, Apple's or Mozilla's push services).
    push_show_content = models.BooleanField(default=False)
    # When the last device of this user went offline (presence).
    last_seen = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = UserManager()

    # Email is the login name (API and admin alike); usernames are display handles.
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_ci_unique",
                violation_error_code="username_taken",
                violation_error_message="A user with this username already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.username

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email or "")
