"""Database sessions whose keys never reach PostgreSQL with a NUL byte."""

from django.contrib.sessions.backends import db


class SessionStore(db.SessionStore):
    """A `sessionid` cookie with NUL (`"\\000"` in a quoted cookie) is no session key:
    looking it up would be a 500 on PostgreSQL."""

    def _validate_session_key(self, key):
        return bool(super()._validate_session_key(key)) and "\x00" not in key
