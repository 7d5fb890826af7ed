"""The build recovery (beat, every ``BUILD_RECOVERY_INTERVAL_SECONDS``): what a crash, a killed worker or
an unreachable intake left half done, handed out again as tasks (the sweep itself calls no backend)."""

from datetime import datetime

from django.utils import timezone

from tenants.services.builds import build_intents_hand_out
from tenants.services.local_runs import local_outcomes_hand_out, local_runs_recover_lost


def builds_recover(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    return {
        "started": build_intents_hand_out(now=now),
        **local_runs_recover_lost(now=now),
        "reposted": local_outcomes_hand_out(now=now),
    }
