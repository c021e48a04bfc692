"""The signed links of the emails (a follow's confirmation, an unsubscribe, the
reporter's verdict): what they carry, read back. Django's signing, a salt per kind of
link; one refusal for all of them, so that every page answers a bad link alike."""

from datetime import timedelta

from django.core import signing


class InvalidToken(Exception):
    """A link that is not ours, altered, or (`expired`) too old (or, for a verdict, that
    names an earlier resolution that was never answered)."""

    def __init__(self, *, expired: bool = False):
        self.expired = expired
        super().__init__("expired" if expired else "invalid")


def load(token: str, *, salt: str, max_age: timedelta | None = None) -> dict:
    """The dictionary a link of this kind (`salt`) carries, if it is ours and not older
    than `max_age`."""
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidToken(expired=True) from None
    except signing.BadSignature:
        raise InvalidToken() from None
    if not isinstance(payload, dict):
        raise InvalidToken()
    return payload
