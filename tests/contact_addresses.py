"""A report's contact address confirmed by its owner, for the tests of the emails that
follow the first one (`tests/test_email_confirmation.py` tests the confirmation itself)."""

from signalements import contact_confirmation


def confirmed(report):
    """The report, its contact address confirmed as the link of its first email does."""
    contact_confirmation.confirm(contact_confirmation.confirm_token(report))
    return report
