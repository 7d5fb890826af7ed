"""Clients of the intake's own OAuth token endpoint (events.oauth): id, hashed secret, rotation, revocation."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0006_detail_stored_once"),
    ]

    operations = [
        migrations.CreateModel(
            name="OAuthClient",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("client_id", models.CharField(max_length=64, unique=True)),
                (
                    "name",
                    models.CharField(help_text="Who uses it, e.g. the EventBridge connection's name.", max_length=200),
                ),
                ("secret_sha256", models.CharField(max_length=64)),
                ("previous_secret_sha256", models.CharField(blank=True, max_length=64)),
                ("previous_secret_valid_until", models.DateTimeField(blank=True, null=True)),
                ("is_active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("secret_rotated_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("last_token_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "OAuth client",
                "ordering": ["name", "id"],
            },
        ),
    ]
