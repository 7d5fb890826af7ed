"""The clients of our own token endpoint: a client id, and its secret stored only as a hash."""

from django.db import models


class OAuthClient(models.Model):
    """A machine (an EventBridge connection) allowed to get intake tokens with its id and secret.

    Secrets are random 256-bit strings generated here, so a SHA-256 digest is enough to store them: there is
    nothing to brute-force, and checking one costs microseconds instead of a password hash's ~0.5 s. After a
    rotation the previous secret still gets tokens until ``previous_secret_valid_until``.
    """

    client_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, help_text="Who uses it, e.g. the EventBridge connection's name.")
    secret_sha256 = models.CharField(max_length=64)
    previous_secret_sha256 = models.CharField(max_length=64, blank=True)
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_token_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "OAuth client"

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"
