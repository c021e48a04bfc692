"""The daily digests of the alerts that are due (`signalements/alerts.py`).

    manage.py send_alert_digests

From `ALERT_DIGEST_HOUR` (in `TIME_ZONE`) on, each confirmed daily alert that has not had
its digest today gets one, with the reports made since its last (none when nothing
came). `manage.py worker` runs the same every few minutes; cron may run it too (at or
after that hour): a digest is claimed by one conditional update, so that there are never
two for one alert on one day, whoever runs it and however often. The emails are tasks
(sent by the worker, or at once with TASKS_BACKEND=immediate). E.g. in a crontab:

    5 7 * * *  cd /srv/signalements && .venv/bin/python manage.py send_alert_digests
"""

from django.core.management.base import BaseCommand

from signalements import alerts


class Command(BaseCommand):
    help = (
        "Send the daily digests of alerts due today (from ALERT_DIGEST_HOUR on). "
        "Idempotent: never two digests for one alert on one day."
    )

    def handle(self, *args, **options):
        count = alerts.send_alert_digests()
        if count:
            plural = "" if count == 1 else "s"
            self.stdout.write(f"{count} daily digest{plural} due today, enqueued.")
        else:
            self.stdout.write("No daily digest due.")
