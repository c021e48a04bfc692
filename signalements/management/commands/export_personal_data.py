"""A person's data, for their access request (GDPR art. 15), as JSON.

    manage.py export_personal_data --email X [--output FILE] [--include-internal-notes]

Every report whose contact email is X (case ignored) or that an account with email X
filed, with its photos' details, comments, history, verdicts and opt-out; X's follows
and alerts; the account(s) with email X (never the password's hash). Internal notes are
left out and counted unless --include-internal-notes: read them, and disclose what the
law asks (see `signalements/personal_data.py`). The output IS personal data: send it to
the person only, by a channel where they proved who they are.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from signalements import personal_data
from signalements.management.arguments import email_address


class Command(BaseCommand):
    help = (
        "Print everything held about the person with this email address (GDPR access "
        "request) as JSON: reports, comments, history, verdicts, follows and alerts, "
        "account. Internal notes are counted, not printed, unless --include-internal-notes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The person's email address.")
        parser.add_argument(
            "--output",
            metavar="FILE",
            help="Write the JSON to FILE instead of the standard output.",
        )
        parser.add_argument(
            "--include-internal-notes",
            action="store_true",
            help="Include the staff's internal notes on the person's reports.",
        )

    def handle(self, *args, email, output=None, include_internal_notes=False, **options):
        email_address(email)
        data = personal_data.export(email, include_internal_notes=include_internal_notes)
        text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2) + "\n"
        if output:
            try:
                with open(output, "w", encoding="utf-8") as file:
                    file.write(text)
            except OSError as error:
                raise CommandError(
                    _("Cannot write %(file)s: %(error)s")
                    % {"file": output, "error": error.strerror or error}
                ) from None
        else:
            self.stdout.write(text, ending="")
        withheld = sum(report["internal_notes_withheld"] for report in data["reports"])
        # The data may be on stdout: the summary goes to stderr.
        self.stderr.write(
            ngettext(
                "%(reports)d report, %(subscriptions)d follows or alerts, %(accounts)d "
                "accounts for %(email)s.",
                "%(reports)d reports, %(subscriptions)d follows or alerts, %(accounts)d "
                "accounts for %(email)s.",
                len(data["reports"]),
            )
            % {
                "reports": len(data["reports"]),
                "subscriptions": len(data["subscriptions"]),
                "accounts": len(data["accounts"]),
                "email": data["email"],
            }
        )
        if withheld:
            self.stderr.write(
                ngettext(
                    "%(count)d internal note withheld (--include-internal-notes to include it).",
                    "%(count)d internal notes withheld (--include-internal-notes to include them).",
                    withheld,
                )
                % {"count": withheld}
            )
