"""Covering indexes on the rollup of reports (`signalements/rollup.py`): the count rows
by what the list's counts and the statistics filter on, the histograms' rows by kind and
bucket, so that the reads scan an index in order without visiting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("signalements", "0018_list_covering_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="reportrollup",
            index=models.Index(
                condition=models.Q(("kind", "c")),
                fields=[
                    "is_public",
                    "status",
                    "category_id",
                    "department_id",
                    "created_month",
                    "resolved_month",
                    "n",
                    "due",
                    "on_time",
                ],
                name="rollup_counts_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="reportrollup",
            index=models.Index(
                fields=[
                    "kind",
                    "bucket",
                    "is_public",
                    "status",
                    "category_id",
                    "department_id",
                    "n",
                ],
                name="rollup_buckets_idx",
            ),
        ),
    ]
