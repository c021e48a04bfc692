"""The agents' daily digests of overdue reports (`signalements/overdue.py`).

    manage.py send_overdue_digests

From `OVERDUE_DIGEST_HOUR` (in `TIME_ZONE`) on, each agent with an email address and
open reports past their due date (of their departments, or assigned to them) gets one
email a day listing them. `manage.py worker` runs the same every few minutes; cron may
run it too (at or after that hour): each agent's digest of the day is claimed once (see
`overdue.py`), whoever runs it and however often. The emails are tasks (sent by the
worker, or at once with TASKS_BACKEND=immediate). E.g. in a crontab:

    5 7 * * *  cd /srv/signalements && .venv/bin/python manage.py send_overdue_digests
"""

from django.core.management.base import BaseCommand

from signalements import overdue


class Command(BaseCommand):
    help = (
        "Send the agents' daily digests of overdue reports (from OVERDUE_DIGEST_HOUR on). "
        "Idempotent: never two digests for one agent on one day."
    )

    def handle(self, *args, **options):
        count = overdue.send_overdue_digests()
        if count:
            plural = "" if count == 1 else "s"
            self.stdout.write(f"{count} overdue digest{plural} due today, enqueued.")
        else:
            self.stdout.write("No overdue digest due.")
