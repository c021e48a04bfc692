"""Several threads write to one SQLite file at once, each in transactions that read
before they write (the case where SQLite's default DEFERRED mode fails at once with
"database is locked"). Prints the number of reports written; exits non-zero on error.

Run with DATABASE_URL pointing at a migrated SQLite file."""

import os
import sys
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signalements_project.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from signalements.models import Signalement  # noqa: E402

THREADS, WRITES = 8, 25
errors: list[BaseException] = []


def writer(number: int) -> None:
    try:
        for index in range(WRITES):
            with transaction.atomic():
                seen = Signalement.objects.count()
                Signalement.objects.create(
                    description=f"Écrit par le fil {number}, n°{index} (vu {seen})",
                    date=timezone.now(),
                )
    except BaseException as error:  # reported by the main thread
        errors.append(error)
    finally:
        connection.close()


threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    print("journal_mode", cursor.fetchone()[0])
print("written", Signalement.objects.count())
if errors:
    print("errors", repr(errors[0]), file=sys.stderr)
    sys.exit(1)
