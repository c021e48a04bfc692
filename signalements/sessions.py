"""Database sessions whose keys never reach PostgreSQL with a NUL byte, and which a
read replica behind the primary does not end (signalements/replicas.py)."""

from django.contrib.sessions.backends import db
from django.utils import timezone

from . import replicas


class SessionStore(db.SessionStore):
    """A `sessionid` cookie with NUL (`"\\000"` in a quoted cookie) is no session key:
    looking it up would be a 500 on PostgreSQL."""

    def _validate_session_key(self, key):
        return bool(super()._validate_session_key(key)) and "\x00" not in key

    def _get_session_from_db(self):
        """Read where the request reads; a session that a replica does not have yet (it
        lags behind a login) is looked for on the primary, rather than taken for gone and
        its cookie deleted (a logout)."""
        key = self.session_key
        found = super()._get_session_from_db()
        if found is None and key and replicas.configured():
            sessions = self.model.objects.filter(session_key=key, expire_date__gt=timezone.now())
            if (primary := replicas.on_primary(sessions)) is not None:
                found = primary.first()
                if found is not None:
                    self._session_key = key
        return found
