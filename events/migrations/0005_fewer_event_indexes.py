"""Received events keep only the indexes their reads use (11 -> 6): every insert and every status change
wrote all of them. Gone: the LIKE (varchar_pattern_ops) twins of event_id, detail_type and tenant_id, the
single-column detail_type and tenant_id indexes (the (tenant_id, received_at) index serves tenant lookups),
and the full index on replay_requested_by (now partial: only rows with a pending replay). event_id stays
unique through a named constraint; PostgreSQL runs this migration in one transaction, so there is no moment
without it. On a large table, expect the unique index and the foreign key to be rebuilt under a lock."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0004_sealed_secrets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="receivedevent",
            name="detail_type",
            field=models.CharField(max_length=128),
        ),
        migrations.AlterField(
            model_name="receivedevent",
            name="event_id",
            field=models.CharField(max_length=256),
        ),
        migrations.AlterField(
            model_name="receivedevent",
            name="replay_requested_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="receivedevent",
            name="tenant_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddIndex(
            model_name="receivedevent",
            index=models.Index(
                condition=models.Q(("replay_requested_by__isnull", False)),
                fields=["replay_requested_by"],
                name="event_replay_requested_by",
            ),
        ),
        migrations.AddConstraint(
            model_name="receivedevent",
            constraint=models.UniqueConstraint(fields=("event_id",), name="event_unique_event_id"),
        ),
    ]
