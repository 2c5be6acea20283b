"""Attachments: limits, type allow-list by content, authorisation, storage."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from messaging import services
from messaging.models import Attachment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def png(width=3, height=2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


def upload(client, data: bytes, name="photo.png", content_type="image/png"):
    return client.post("/attachments", {"file": SimpleUploadedFile(name, data, content_type=content_type)})


def test_upload_image_records_type_size_and_dimensions(client_for, alice):
    data = png(30, 20)
    response = upload(client_for(alice), data)
    assert response.status_code == 201
    body = response.json()
    assert (body["content_type"], body["size"], body["width"], body["height"]) == ("image/png", len(data), 30, 20)
    assert body["name"] == "photo.png" and body["url"] == f"/attachments/{body['id']}"
    stored = Attachment.objects.get(pk=body["id"])
    assert default_storage.exists(stored.file.name) and "photo" not in stored.file.name


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"%PDF-1.7 ...", "application/pdf"), ("plain text, ünïcode".encode(), "text/plain")],
)
def test_type_comes_from_the_bytes_not_the_claim(client_for, alice, data, expected):
    response = upload(client_for(alice), data, name="x.png", content_type="image/png")
    assert response.status_code == 201 and response.json()["content_type"] == expected


@pytest.mark.parametrize(
    "data",
    [b"MZ\x90\x00\x03\x00\x00\x00binary", b"\x7fELF\x02\x01\x01\x00", b"PK\x03\x04zip"],
    ids=["exe", "elf", "zip"],
)
def test_types_outside_the_allow_list_are_415(client_for, alice, data):
    response = upload(client_for(alice), data, name="tool.txt", content_type="text/plain")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_type"
    assert not Attachment.objects.exists()


def test_a_broken_image_is_refused(client_for, alice):
    response = upload(client_for(alice), b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert response.status_code == 400 and response.json()["code"] == "invalid_attachment"


def test_size_limit(client_for, alice, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = upload(client_for(alice), b"a" * 1001, name="big.txt")
    assert response.status_code == 413 and response.json()["code"] == "attachment_too_large"
    assert upload(client_for(alice), b"a" * 1000, name="ok.txt").status_code == 201


def test_missing_file_and_empty_file(client_for, alice):
    assert client_for(alice).post("/attachments", {}).status_code == 400
    assert upload(client_for(alice), b"", name="empty.txt").status_code == 400


def test_file_names_are_made_safe(client_for, alice):
    body = upload(client_for(alice), b"hello", name="../../etc/pass\x07wd.txt").json()
    assert body["name"] == "passwd.txt"


def send_with_file(sender, to, attachment_id, content=""):
    return services.message_send(sender=sender, to=str(to.id), content=content, attachments=[str(attachment_id)])


def test_send_with_attachment_and_download_by_members_only(
    client_for, alice, bob, make_user, django_capture_on_commit_callbacks
):
    attachment_id = upload(client_for(alice), png()).json()["id"]
    # Before sending, only the uploader can fetch it.
    assert client_for(bob).get(f"/attachments/{attachment_id}").status_code == 404
    message = send_with_file(alice, bob, attachment_id).message
    history = client_for(bob).get(f"/chats/{alice.id}").json()
    assert history[0]["content"] == "" and history[0]["attachments"][0]["id"] == attachment_id

    response = client_for(bob).get(f"/attachments/{attachment_id}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="photo.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == png()
    assert client_for(make_user("eve")).get(f"/attachments/{attachment_id}").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):  # the files go once the delete commits
        services.message_delete(user=alice, message_id=message.id)
    assert client_for(bob).get(f"/attachments/{attachment_id}").status_code == 404
    assert not default_storage.exists(Attachment.objects.get(pk=attachment_id).file.name)


def test_unicode_file_names_get_a_safe_content_disposition(client_for, alice, bob):
    attachment_id = upload(client_for(alice), b"hi", name='résumé "final".txt').json()["id"]
    send_with_file(alice, bob, attachment_id, "cv")
    disposition = client_for(bob).get(f"/attachments/{attachment_id}")["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=utf-8''" in disposition
    assert '"final"' not in disposition


def test_an_attachment_goes_with_one_message_of_its_uploader_only(client_for, alice, bob):
    from messaging.attachments.services import InvalidAttachment

    attachment_id = upload(client_for(alice), b"once").json()["id"]
    with pytest.raises(InvalidAttachment):
        send_with_file(bob, alice, attachment_id, "not mine")
    send_with_file(alice, bob, attachment_id, "mine")
    with pytest.raises(InvalidAttachment):
        send_with_file(alice, bob, attachment_id, "again")
    with pytest.raises(InvalidAttachment):
        services.message_send(sender=alice, to=str(bob.id), content="x", attachments="nope")
    with pytest.raises(InvalidAttachment):
        services.message_send(sender=alice, to=str(bob.id), content="x", attachments=[str(attachment_id)] * 11)


def test_a_message_needs_text_or_files(alice, bob):
    from messaging.exceptions import InvalidContent

    with pytest.raises(InvalidContent):
        services.message_send(sender=alice, to=str(bob.id), content=None, attachments=[])


def test_group_attachment_for_members_and_not_for_the_removed(client_for, alice, bob, make_user):
    carol = make_user("carol")
    group = services.group_create(creator=alice, title="Pics", members=[bob.id, carol.id])
    first = upload(client_for(alice), png()).json()["id"]
    services.conversation_message_send(sender=alice, conversation=group.id, content="", attachments=[first])
    services.group_remove_member(user=alice, conversation_id=group.id, member_id=carol.id)
    second = upload(client_for(alice), png(5, 5)).json()["id"]
    services.conversation_message_send(sender=alice, conversation=group.id, content="", attachments=[second])
    assert client_for(bob).get(f"/attachments/{second}").status_code == 200
    assert client_for(carol).get(f"/attachments/{first}").status_code == 200  # history up to removal
    assert client_for(carol).get(f"/attachments/{second}").status_code == 404


def test_upload_requires_auth(api_client):
    assert api_client.post("/attachments", {"file": SimpleUploadedFile("a.txt", b"a")}).status_code == 401


def test_s3_storage_by_configuration():
    import os
    import subprocess
    import sys

    from chatserver.tests.test_settings import ROOT

    env = {
        **os.environ,
        "DJANGO_ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "chatserver.settings",
        "ATTACHMENT_STORAGE": "s3",
        "S3_BUCKET": "chat-files",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    code = (
        "import django; django.setup(); from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "chat-files", "http://127.0.0.1:9000"]


def test_retrying_a_send_with_files_returns_the_stored_message(client_for, alice, bob):
    attachment_id = upload(client_for(alice), b"notes").json()["id"]
    first = services.message_send(
        sender=alice, to=str(bob.id), content="", attachments=[attachment_id], client_id="retry-files"
    )
    again = services.message_send(
        sender=alice, to=str(bob.id), content="", attachments=[attachment_id], client_id="retry-files"
    )
    assert again.created is False and again.message.id == first.message.id


def test_pixel_bombs_are_refused(client_for, alice):
    response = upload(client_for(alice), png(8000, 6000))  # 48 megapixels, a few KB compressed
    assert response.status_code == 400 and response.json()["code"] == "invalid_attachment"


def test_text_must_be_text_all_the_way(client_for, alice):
    response = upload(client_for(alice), b"harmless start " * 200 + b"\x00\x01binary tail", name="a.txt")
    assert response.status_code == 415


def test_unsent_uploads_are_pruned(client_for, alice, bob):
    from django.core.management import call_command

    kept = upload(client_for(alice), b"sent").json()["id"]
    services.message_send(sender=alice, to=str(bob.id), content="", attachments=[kept])
    dropped = upload(client_for(alice), b"abandoned").json()["id"]
    call_command("prune_attachments", "--hours", "0")
    assert set(Attachment.objects.values_list("id", flat=True)) == {__import__("uuid").UUID(kept)}
    assert dropped
