"""PostgreSQL's backend for the replica alias (see the package), as Django documents
subclassing a built-in backend: a connection that cannot be made, or a statement that
fails for want of the server, is reported to `signalements.replicas.failed` (the replica
marked down, the request run again on the primary) before the error goes on as usual."""

from django.db import DatabaseError
from django.db.backends.postgresql import base

from signalements import replicas


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(replicas.watch)

    def ensure_connection(self):
        try:
            super().ensure_connection()
        except DatabaseError as error:
            replicas.failed(error, connecting=True)
            raise
