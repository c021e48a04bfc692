"""Retention of reporters' personal data: anonymize closed reports past the period.

    manage.py anonymize_reports [--older-than DAYS] [--status resolved,rejected] [--dry-run]

Blanks the contact fields and detaches the reporter of closed reports closed more than
DAYS days ago (default `RETENTION_DAYS`, 365), in their history too, and records it in
their history (see `signalements/retention.py`); deletes their follows, and the follows
and alerts never confirmed within `SUBSCRIPTION_CONFIRM_DAYS`. Prints one line per report and a
summary (`-v 0`: the summary only). Safe to run daily from cron: a second run finds
nothing to do, and exits 0 either way. E.g. in a crontab:

    15 3 * * *  cd /srv/signalements && .venv/bin/python manage.py anonymize_reports -v 0
"""

import argparse
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from signalements import retention


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, not {value!r}")
    return days


class Command(BaseCommand):
    help = (
        "Anonymize closed reports past the retention period: blank their contact fields "
        "and detach their reporter (in their history too), recording it in the history. "
        "Idempotent; safe to run daily."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=positive_days,
            metavar="DAYS",
            help="Anonymize reports closed more than DAYS days ago "
            f"(default: RETENTION_DAYS, {retention.DEFAULT_RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--status",
            metavar="STATUSES",
            help="Comma-separated closed statuses to anonymize "
            f"(default: RETENTION_STATUSES, {','.join(retention.DEFAULT_RETENTION_STATUSES)}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the reports that would be anonymized; change nothing.",
        )

    def handle(self, *args, older_than=None, status=None, dry_run=False, **options):
        if older_than is None:
            period = retention.retention_period()
            if period.days < 1:
                raise CommandError(
                    f"RETENTION_DAYS must be a positive number of days, not {period.days}."
                )
        else:
            period = timedelta(days=older_than)
        try:
            statuses = retention.check_statuses(
                retention.retention_statuses()
                if status is None
                else [value.strip() for value in status.split(",") if value.strip()]
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        result = retention.anonymize(older_than=period, statuses=statuses, dry_run=dry_run)

        verb = "would anonymize" if dry_run else "anonymized"
        if options["verbosity"] >= 1:
            for report in result.reports:
                closed = timezone.localtime(report.closed_at).date().isoformat()
                self.stdout.write(f"{verb} {report.reference} ({report.status}, closed {closed})")
        scope = (
            f"{', '.join(result.statuses)} reports closed more than {period.days} days ago "
            f"(before {timezone.localtime(result.cutoff):%Y-%m-%d %H:%M})"
        )
        plural = "" if result.count == 1 else "s"
        if dry_run:
            summary = (
                f"Dry run: {result.count} report{plural} would be anonymized among {scope}; "
                "nothing changed."
            )
        elif result.count:
            summary = f"{result.count} report{plural} anonymized among {scope}."
        else:
            summary = f"Nothing to anonymize among {scope}."
        summary += subscriptions_summary(result)
        self.stdout.write(self.style.SUCCESS(summary) if result.count and not dry_run else summary)


def subscriptions_summary(result: retention.AnonymizationResult) -> str:
    """The follows and alerts deleted (or that would be), when there are any."""
    parts = []
    if result.follows:
        parts.append(
            f"{result.follows} follow{'' if result.follows == 1 else 's'} of these reports"
        )
    if result.unconfirmed:
        plural = "" if result.unconfirmed == 1 else "s"
        parts.append(f"{result.unconfirmed} unconfirmed follow{plural} or alert{plural}")
    if not parts:
        return ""
    verb = "would be deleted" if result.dry_run else "deleted"
    return f" {' and '.join(parts)} {verb}."
