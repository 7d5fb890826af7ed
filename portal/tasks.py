"""Tasks of the staff portal: the doctor's periodic round."""

from orchestrator.task_policy import lifecycle_task


@lifecycle_task(name="portal.doctor_announce")
def doctor_announce() -> int:
    """Beat: run the doctor and announce each new finding once (``tenant.stuck``, alert mail)."""
    from portal.doctor.service import doctor_announce as announce

    return announce()
