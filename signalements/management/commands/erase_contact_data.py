"""Erase a person's contact data at their request, by their email address: for a
reporter without an account (one with an account does it themselves, `POST
/api/me/erase-contact-data/`).

    manage.py erase_contact_data --email X

Blanks the contact fields of the reports given with X (in their history too) and their
words in their verdicts, records it in the reports' history, blanks X wherever the
reports' history still holds it, and deletes the follows and alerts at X (see
`signalements/retention.py`). Check with `manage.py export_personal_data --email X`.
Idempotent.
"""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from signalements import retention
from signalements.management.arguments import email_address


class Command(BaseCommand):
    help = (
        "Erase the contact data given with this email address (reports, their history, "
        "the verdicts' words) and delete the follows and alerts at it: a person's "
        "erasure request, for a reporter without an account."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The person's email address.")

    def handle(self, *args, email, **options):
        address = email_address(email)
        result = retention.erase_address(email=address)
        self.stdout.write(
            _(
                "%(email)s: contact data erased from %(reports)d reports (and from the "
                "history of %(history)d), %(subscriptions)d follows or alerts deleted."
            )
            % {
                "email": address,
                "reports": result.reports,
                "history": result.history_only,
                "subscriptions": result.subscriptions,
            }
        )
