"""How every email is made and sent: a plain-text part and an HTML part, rendered from
the templates of `templates/signalements/emails/` (`<name>.txt` and `<name>.html`) in
the recipient's language, with absolute links to this server (`PUBLIC_BASE_URL`).

A notification (a report's status or comment, an alert, a digest) carries a link to stop
it, in its text and in the RFC 8058 headers that mail clients show as an "unsubscribe"
button (`List-Unsubscribe: <https://…>` with `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`: one POST to that address unsubscribes, no page, no login).

Emails are sent by tasks (`notifications.py`, `subscriptions.py`), one task per
recipient, tried again after each of `EMAIL_RETRY_DELAYS` when the mail server fails.
Subjects are fixed words and a reference: text that people wrote (a title, a comment)
goes in the body only."""

import re
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.urls import reverse

TEMPLATES = "signalements/emails"
# The delays after which a failed email is tried again (`EMAIL_RETRY_DELAYS`, seconds).
RETRY_DELAYS = tuple(timedelta(seconds=seconds) for seconds in settings.EMAIL_RETRY_DELAYS)


def public_url(path: str) -> str:
    """`path` (from `reverse()`) as an absolute URL on the public address."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def report_url(report_id: int) -> str:
    """Where a report is read (the REST API's representation, public fields only)."""
    return public_url(reverse("signalement-detail", args=[report_id]))


def _text(template: str, context: dict) -> str:
    """A plain-text template, without HTML escaping, its blank lines tidied: no trailing
    spaces, at most one empty line in a row, none at either end."""
    text = get_template(f"{TEMPLATES}/{template}.txt").template.render(
        Context(context, autoescape=False)
    )
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def compose(
    template: str,
    *,
    to: str,
    subject: str,
    context: dict,
    unsubscribe_url: str | None = None,
) -> EmailMultiAlternatives:
    """The email `template` to `to`, rendered in the active language (the caller sets
    it: `translation.override`). With `unsubscribe_url`, a notification: the link in
    the text and the one-click headers."""
    context = {**context, "unsubscribe_url": unsubscribe_url, "site": settings.PUBLIC_BASE_URL}
    headers = {"Auto-Submitted": "auto-generated"}
    if unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=subject,
        body=_text(template, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers,
    )
    message.attach_alternative(
        render_to_string(f"{TEMPLATES}/{template}.html", context), "text/html"
    )
    return message


def mailbox(address: str) -> str:
    """An address as compared: trimmed, case folded."""
    return address.strip().casefold()


def same_address(first: str | None, second: str | None) -> bool:
    """Whether two email addresses are the same mailbox, as far as we can tell (case
    aside)."""
    return bool(first) and bool(second) and mailbox(first) == mailbox(second)
