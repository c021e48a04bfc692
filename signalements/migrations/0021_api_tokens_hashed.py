"""API tokens are stored hashed (django-rest-knox): each token of DRF's `authtoken` table
moves into knox's table as knox stores a token (its SHA-512 digest, and its first 15
characters by which knox finds it), valid TOKEN_TTL_DAYS from now; the `authtoken` table
is then emptied. Holders keep using their token; the database holds it no more.

DRF's authtoken app is no longer installed: its table, left by earlier versions, is read
with SQL when it exists (a new database has none). Going back leaves the tokens in knox's
table (there is no way back to the keys)."""

from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings

DRF_TOKENS = "authtoken_token"


def move_drf_tokens(connection, AuthToken) -> int:
    """Move the keys of DRF's token table into `AuthToken` (knox's model) and empty the
    table; how many there were."""
    if DRF_TOKENS not in connection.introspection.table_names():
        return 0
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('key')}, {quote('user_id')} FROM {quote(DRF_TOKENS)}")
        rows = cursor.fetchall()
    ttl = knox_settings.TOKEN_TTL
    expiry = timezone.now() + ttl if ttl else None
    AuthToken.objects.using(connection.alias).bulk_create(
        [
            AuthToken(
                digest=hash_token(key),
                token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
                user_id=user_id,
                expiry=expiry,
            )
            for key, user_id in rows
        ],
        ignore_conflicts=True,  # moved already (a migration run again)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(DRF_TOKENS)}")
    return len(rows)


def forwards(apps, schema_editor):
    move_drf_tokens(schema_editor.connection, apps.get_model("knox", "AuthToken"))


class Migration(migrations.Migration):
    dependencies = [
        ("signalements", "0020_history_without_copied_indexes"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
