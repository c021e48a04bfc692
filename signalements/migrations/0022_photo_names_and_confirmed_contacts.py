"""Photos are served after a check that finds the photo by its file name (an index on
each name); a report's contact address confirmed by its owner (`ConfirmedContact`).
Neither alters the reports' table."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("signalements", "0021_api_tokens_hashed"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="attachment",
            index=models.Index(fields=["file"], name="attachment_file_idx"),
        ),
        migrations.AddIndex(
            model_name="attachment",
            index=models.Index(fields=["thumbnail"], name="attachment_thumbnail_idx"),
        ),
        migrations.CreateModel(
            name="ConfirmedContact",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "address_digest",
                    models.CharField(
                        db_index=True, max_length=64, verbose_name="address (keyed hash)"
                    ),
                ),
                (
                    "confirmed_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="confirmed at"
                    ),
                ),
                (
                    "signalement",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="confirmed_contact",
                        to="signalements.signalement",
                        verbose_name="signalement",
                    ),
                ),
            ],
            options={
                "verbose_name": "confirmed contact address",
                "verbose_name_plural": "confirmed contact addresses",
            },
        ),
    ]
