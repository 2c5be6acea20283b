"""The admin as a moderation desk: flat query counts, deleted content hidden,
actions through the services (every device told, recorded in the admin log),
and each thing only for staff with the permission for it."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conftest import TEST_PASSWORD
from messaging import services
from messaging.models import Conversation, Message, UserEvent

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/messaging/message/"
USERS = "/admin/accounts/user/"


@pytest.fixture
def root(make_user, client):
    user = make_user("root", "root@example.com")
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    return user


@pytest.fixture
def moderator_client(make_user):
    """Staff who may view messages and users and delete messages, not a superuser."""

    def make(*codenames: str):
        user = make_user("mod", "mod@example.com")
        user.is_staff = True
        user.save()
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return make


def chat(make_user, count: int, prefix: str = "m") -> list[Message]:
    alice, bob = make_user(f"{prefix}alice"), make_user(f"{prefix}bob")
    return [services.message_send(sender=alice, to=str(bob.id), content=f"{prefix} {n}").message for n in range(count)]


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_lists_cost_the_same_queries_for_5_rows_as_for_40(client, root, make_user):
    first = chat(make_user, 5, "a")[0]
    other = first.conversation.other_user_id(first.sender_id)
    group = services.group_create(creator=first.sender, title="Weekend", members=[other])
    services.conversation_message_send(sender=first.sender, conversation=str(group.id), content="hi all")
    few = {url: queries(client, url) for url in (MESSAGES, "/admin/messaging/conversation/", USERS)}
    chat(make_user, 35, "b")
    for n in range(10):
        services.group_create(creator=make_user(f"c{n}"), title=f"g{n}", members=[])
    many = {url: queries(client, url) for url in few}
    assert many == few


def test_messages_read_as_sender_to_recipient_with_deleted_content_hidden(client, root, make_user):
    kept, gone = chat(make_user, 2)
    services.message_delete(user=gone.sender, message_id=gone.id)
    page = client.get(MESSAGES).content.decode()
    assert "malice → mbob" in page and "m 0" in page
    assert "m 1" not in page and "(deleted: content hidden)" in page
    # Searchable by content, username, email and id; filterable by conversation.
    assert "m 0" in client.get(MESSAGES, {"q": "m 0"}).content.decode()
    assert client.get(MESSAGES, {"q": "malice@"}).content.decode().count("malice → mbob") == 2
    assert "m 0" in client.get(MESSAGES, {"q": str(kept.id)}).content.decode()
    other = chat(make_user, 1, "z")[0]
    filtered = client.get(MESSAGES, {"conversation__id__exact": str(other.conversation_id)}).content.decode()
    assert "z 0" in filtered and "m 0" not in filtered
    # A superuser sees deleted content only when asking for it.
    detail = f"{MESSAGES}{gone.id}/change/"
    assert "m 1" not in client.get(detail).content.decode()
    assert "m 1" in client.get(detail, {"reveal": "1"}).content.decode()


def test_a_moderator_never_sees_deleted_content(moderator_client, make_user):
    _, gone = chat(make_user, 2)
    services.message_delete(user=gone.sender, message_id=gone.id)
    client = moderator_client("view_message", "delete_message")
    assert "m 1" not in client.get(f"{MESSAGES}{gone.id}/change/", {"reveal": "1"}).content.decode()


def test_delete_for_everyone_goes_through_the_service_and_the_log(client, root, make_user):
    first, second = chat(make_user, 2)
    response = client.post(
        MESSAGES, {"action": "delete_for_everyone", "_selected_action": [str(first.id), str(second.id)]}, follow=True
    )
    assert "Deleted 2 message(s) for everyone." in response.content.decode()
    assert Message.objects.filter(is_deleted=True).count() == 2
    # Every device of both users is told, through the event log, as for the sender's own delete.
    told = UserEvent.objects.filter(frame__type="message_deleted")
    assert sorted(str(e.frame["id"]) for e in told.filter(user=first.sender)) == sorted([str(first.id), str(second.id)])
    assert told.filter(user_id=first.conversation.other_user_id(first.sender_id)).count() == 2
    assert LogEntry.objects.filter(change_message="Deleted for everyone").count() == 2
    again = client.post(MESSAGES, {"action": "delete_for_everyone", "_selected_action": [str(first.id)]}, follow=True)
    assert "1 were deleted already." in again.content.decode()


def test_only_staff_with_the_permission_may_act(moderator_client, make_user):
    message = chat(make_user, 1)[0]
    viewer = moderator_client("view_message", "view_user", "view_conversation")
    page = viewer.get(MESSAGES).content.decode()
    assert "m 0" in page and "delete_for_everyone" not in page
    response = viewer.post(MESSAGES, {"action": "delete_for_everyone", "_selected_action": [str(message.id)]})
    assert not Message.objects.get(pk=message.pk).is_deleted
    assert "deactivate" not in viewer.get(USERS).content.decode()
    assert response.status_code in (200, 302)


def test_staff_without_view_permission_see_nothing(moderator_client, make_user):
    chat(make_user, 1)
    client = moderator_client()
    assert client.get(MESSAGES).status_code == 403
    assert client.get(USERS).status_code == 403


def test_deactivate_revokes_tokens_and_is_logged(client, root, make_user, api_client, token_for):
    target = make_user("spammer")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(target)}")
    assert api_client.get("/users/me").status_code == 200
    response = client.post(USERS, {"action": "deactivate", "_selected_action": [str(target.id)]}, follow=True)
    assert "Deactivated 1 user(s)" in response.content.decode()
    target.refresh_from_db()
    assert not target.is_active and target.token_version == 1
    assert api_client.get("/users/me").status_code == 401
    login = {"email": target.email, "password": TEST_PASSWORD}
    assert api_client.post("/auth/login", login, format="json").status_code == 401
    assert LogEntry.objects.filter(change_message="Deactivated", object_id=str(target.id)).exists()


def test_pages_of_a_conversation_and_a_user(client, root, make_user):
    messages = chat(make_user, 3)
    conversation = Conversation.objects.get()
    page = client.get(f"/admin/messaging/conversation/{conversation.id}/change/").content.decode()
    assert "malice ↔ mbob" in page or "mbob ↔ malice" in page
    assert [page.index(f"m {n}") for n in range(3)] == sorted(page.index(f"m {n}") for n in range(3))
    assert f"conversation__id__exact={conversation.id}" in page
    user_page = client.get(f"{USERS}{messages[0].sender.id}/change/").content.decode()
    assert f"/admin/messaging/conversation/{conversation.id}/change/" in user_page
    assert f"sender__id__exact={messages[0].sender.id}" in user_page
