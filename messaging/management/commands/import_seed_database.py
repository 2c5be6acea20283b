"""Import the users and messages of a Go chat server's PostgreSQL database."""

from django.core.management.base import BaseCommand, CommandError

from messaging.seed_import import ImportConflict, NotASeedDatabase, import_seed_database


class Command(BaseCommand):
    help = (
        "Import users (passwords keep working) and messages from the Go chat server's PostgreSQL "
        "database at SOURCE_URL. All or nothing; running it again imports only what is new."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("source_url", help="postgres://user:password@host:5432/database of the Go server")

    def handle(self, *args, source_url: str, **options) -> None:
        try:
            report = import_seed_database(source_url, progress=self.stdout.write)
        except (NotASeedDatabase, ImportConflict) as error:
            raise CommandError(f"{error} Nothing was imported.") from None
        lines = [
            f"Users: {report.users_imported} imported, {report.users_present} imported before.",
            f"Messages: {report.messages_imported} imported, {report.messages_present} imported before, "
            f"in {report.conversations_created} new conversations.",
        ]
        lines += [
            f"  username {old!r} is {new!r} here (taken regardless of case)" for old, new in report.usernames_renamed
        ]
        skipped = {
            "to oneself (no such conversation here)": report.messages_to_self,
            "with a sender or receiver that is not a user": report.messages_without_user,
        }
        lines += [f"  skipped {count} messages {why}" for why, count in skipped.items() if count]
        if report.messages_empty:
            lines.append(f"  {report.messages_empty} empty messages kept as they were")
        if report.messages_without_time:
            lines.append(f"  {report.messages_without_time} messages had no time: given the import's")
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
