#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatserver.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    argv = list(sys.argv)
    # `runserver` with no address listens on $PORT (8080 by default), like the seed.
    if len(argv) >= 2 and argv[1] == "runserver" and not any(a[:1].isdigit() or ":" in a for a in argv[2:]):
        argv.append(f"127.0.0.1:{settings.PORT}")
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
