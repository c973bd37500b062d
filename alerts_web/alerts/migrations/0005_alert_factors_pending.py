from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0004_alert_input_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="factors_pending",
            field=models.BooleanField(
                default=False, help_text="The explainer stage has yet to add this score's factors."
            ),
        ),
    ]
