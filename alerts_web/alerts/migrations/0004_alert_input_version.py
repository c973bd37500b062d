from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_worklist_lifecycle"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="input_version",
            field=models.PositiveIntegerField(
                blank=True, help_text="The stay's input version the score came from.", null=True
            ),
        ),
    ]
