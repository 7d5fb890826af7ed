from django.db import models


class DoctorNotice(models.Model):
    """A finding the doctor announced (``tenant.stuck``): each finding is announced once, however many times
    the beat task finds it again. Deleted when the finding is gone."""

    key = models.CharField(max_length=255, unique=True)
    rule = models.CharField(max_length=64)
    tenant_id = models.CharField(max_length=64, blank=True)
    announced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-announced_at"]

    def __str__(self) -> str:
        return self.key
