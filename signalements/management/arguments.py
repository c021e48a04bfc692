"""What several commands read from their arguments."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from signalements.subscriptions import normalize


def email_address(email: str) -> str:
    """`--email`, normalized as the app stores addresses; a CommandError when it is not
    an address."""
    address = normalize(email)
    try:
        validate_email(address)
    except ValidationError:
        raise CommandError(
            _("--email: %(email)r is not an email address.") % {"email": email}
        ) from None
    return address
