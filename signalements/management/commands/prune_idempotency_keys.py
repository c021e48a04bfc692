"""Deletes the responses kept for `Idempotency-Key` retries once they expire.

    manage.py prune_idempotency_keys

Keyed writes already delete a few expired keys each (see `signalements/idempotency.py`);
this deletes all of them, e.g. hourly from cron after a quiet period:

    5 * * * *  cd /srv/signalements && .venv/bin/python manage.py prune_idempotency_keys -v 0
"""

from django.core.management.base import BaseCommand

from signalements import idempotency


class Command(BaseCommand):
    help = (
        "Delete the expired responses kept for Idempotency-Key retries "
        "(IDEMPOTENCY_KEY_TTL_HOURS). Safe to run at any time."
    )

    def handle(self, *args, **options):
        deleted = idempotency.prune()
        if options["verbosity"] >= 1:
            self.stdout.write(f"{deleted} expired idempotency key(s) deleted.")
