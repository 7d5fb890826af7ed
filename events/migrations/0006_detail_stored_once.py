"""A received event's validated detail is stored only when validation changed it (``detail_override``, still
the ``detail`` column, now nullable); otherwise it is read from the envelope. Rows stored before keep their
copy, which reads the same."""

from django.db import migrations

import orchestrator.sealing


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_fewer_event_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="receivedevent",
                    name="detail",
                    field=orchestrator.sealing.SealedJSONField(null=True, blank=True),
                ),
            ],
            state_operations=[
                migrations.RenameField(model_name="receivedevent", old_name="detail", new_name="detail_override"),
                migrations.AlterField(
                    model_name="receivedevent",
                    name="detail_override",
                    field=orchestrator.sealing.SealedJSONField(null=True, blank=True, db_column="detail"),
                ),
            ],
        ),
    ]
