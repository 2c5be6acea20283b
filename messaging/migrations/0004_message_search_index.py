"""GIN index for message search, on PostgreSQL only (SQLite searches by substring)."""

from django.db import migrations

INDEX_NAME = "messaging_message_search"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from django.contrib.postgres.indexes import GinIndex
    from django.contrib.postgres.search import SearchVector

    message = apps.get_model("messaging", "Message")
    # The same expression as messaging.search.selectors.message_search filters on, so the planner uses it.
    schema_editor.add_index(message, GinIndex(SearchVector("content", config="simple"), name=INDEX_NAME))


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX_NAME}"')


class Migration(migrations.Migration):
    dependencies = [("messaging", "0003_groups")]

    operations = [migrations.RunPython(create_index, drop_index)]
