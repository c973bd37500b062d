"""Wards learn where they came from: an admin or the demo seed, or the EHR's Location."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wards", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="ward",
            name="origin",
            field=models.CharField(
                choices=[
                    ("manual", "Created by an admin or the demo seed"),
                    ("ehr", "Seen first in a score from the EHR"),
                ],
                default="manual",
                db_default="manual",
                editable=False,
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="ward",
            name="first_seen_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When a score first named this ward.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="ward",
            name="code",
            field=models.CharField(
                help_text="The ward code in events (the EHR's Location id).",
                max_length=64,
                unique=True,
            ),
        ),
    ]
