"""The replica's database backend: Django's PostgreSQL backend, telling
`signalements.replicas` when the replica fails (named in DATABASES["replica"]["ENGINE"]
by the settings when DATABASE_REPLICA_URL is set)."""
