"""Two real Celery beat processes on one Redis (RedBeat, ``orchestrator/beat.py``): one schedules at a time;
when it is killed with SIGKILL the other takes over within the lock timeout, and no periodic task is sent
twice in one interval. The test reads every message beat publishes straight from the broker's queues."""

import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest
import redis
from django.conf import settings

from devstack.stack import LiveStack, wait_until

LOCK_TIMEOUT = 6
LOOP_INTERVAL = 1
# Periodic tasks made frequent for the test: task -> (setting, interval in seconds). The others keep their
# intervals of minutes (a new entry first runs one interval after it is installed).
INTERVALS = {
    "events.sweep_stale_events": ("EVENT_SWEEP_INTERVAL_SECONDS", 1),
    "tenants.poll_builds": ("BUILD_POLL_INTERVAL_SECONDS", 2),
    "webhooks.dispatch_due": ("WEBHOOK_DISPATCH_INTERVAL_SECONDS", 2),
    "tenants.sync_pending": ("DYNAMODB_SYNC_SWEEP_SECONDS", 5),
}


@dataclass
class Sent:
    at: float
    task: str
    pid: int


class BrokerTap:
    """Pops every message published to the given queues (no worker consumes them) and notes which process
    sent which task when (Celery's ``origin`` header is ``gen<pid>@<host>``)."""

    def __init__(self, url: str, queues: list[str]) -> None:
        self.client = redis.Redis.from_url(url)
        self.queues = queues
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                popped = self.client.brpop(self.queues, timeout=0.2)
            except redis.ConnectionError:  # Redis stopped by the test: try again until it is back
                time.sleep(0.2)
                continue
            if popped:
                headers = json.loads(popped[1])["headers"]
                pid = int(headers["origin"].split("@", 1)[0].removeprefix("gen"))
                self.sent.append(Sent(time.monotonic(), headers["task"], pid))

    def __enter__(self) -> "BrokerTap":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def by(self, pids: set[int]) -> list[Sent]:
        return [sent for sent in list(self.sent) if sent.pid in pids]


def beat_stack(tmp_path, *, redis_url: str | None, aws_endpoint_url: str) -> LiveStack:
    """A stack for beats only, on ``redis_url`` (None: an embedded Redis the test can stop)."""
    return LiveStack(
        database_url=f"sqlite:///{tmp_path}/unused.sqlite3",  # beat only publishes; it never opens the database
        redis_url=redis_url,
        aws_endpoint_url=aws_endpoint_url,
        extra_env={
            "BEAT_KEY_PREFIX": f"test-beat-{uuid.uuid4().hex}:",
            "BEAT_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT),
            "BEAT_MAX_LOOP_INTERVAL_SECONDS": str(LOOP_INTERVAL),
            "EVENT_EMULATOR_RELAY": "false",
            **{setting: str(interval) for setting, interval in INTERVALS.values()},
        },
        log_dir=tmp_path,
    )


@pytest.fixture
def beats(live_services, tmp_path):
    with beat_stack(
        tmp_path, redis_url=live_services["redis_url"], aws_endpoint_url=live_services["moto_url"]
    ) as stack:
        yield stack


def test_one_beat_schedules_and_the_other_takes_over_when_it_is_killed(beats, live_services):
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.WEBHOOK_QUEUE]
    with BrokerTap(live_services["redis_url"], queues) as tap:
        # Given two beats started together on the same Redis
        first, second = beats.start_beat("beat1"), beats.start_beat("beat2")
        pids = {first.pid, second.pid}
        wait_until(lambda: len(tap.by(pids)) >= 10, timeout=60, message="beat sending tasks")
        time.sleep(4)

        # Then only one of them sends anything
        before = tap.by(pids)
        senders = {sent.pid for sent in before}
        assert len(senders) == 1, senders
        holder = first if first.pid in senders else second
        standby = second if holder is first else first

        # When the holder is killed with SIGKILL (it cannot release its lock)
        killed_at = time.monotonic()
        holder.kill()

        # Then the other one takes over within the lock timeout (plus one loop of trying to take it)
        taken = wait_until(
            lambda: tap.by({standby.pid}), timeout=LOCK_TIMEOUT + 30, message="the standby beat sending tasks"
        )
        takeover = taken[0].at - killed_at
        assert takeover <= LOCK_TIMEOUT + LOOP_INTERVAL + 1, takeover
        assert "Acquired lock" in standby.log_text()
        time.sleep(5)

    sent = tap.by(pids)
    after = [item for item in sent if item.at > killed_at]
    assert {item.pid for item in after} == {standby.pid}
    # And no task was sent twice in one interval, across the take-over too: consecutive sends of a task are
    # at least (about) an interval apart, and no task was sent more often than its interval allows
    elapsed = sent[-1].at - sent[0].at
    times = defaultdict(list)
    for item in sent:
        times[item.task].append(item.at)
    for task, (_setting, interval) in INTERVALS.items():
        gaps = [later - earlier for earlier, later in zip(times[task], times[task][1:], strict=False)]
        assert len(gaps) >= 2, (task, gaps)
        assert min(gaps) >= interval / 2, (task, gaps)
        assert len(times[task]) <= elapsed / interval + 1, (task, len(times[task]), elapsed)


def test_a_beat_that_loses_redis_keeps_running_and_schedules_again_when_it_is_back(live_services, tmp_path):
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.WEBHOOK_QUEUE]
    with beat_stack(tmp_path, redis_url=None, aws_endpoint_url=live_services["moto_url"]) as stack:
        beat = stack.start_beat()
        with BrokerTap(stack.redis_url, queues) as tap:
            wait_until(lambda: tap.by({beat.pid}), timeout=60, message="beat sending tasks")

            # When Redis stops and comes back empty (no lock, no schedule)
            stack.stop_redis()
            time.sleep(LOCK_TIMEOUT / 2)
            stack.start_redis()
            restarted = time.monotonic()

            # Then the same beat process takes the lock again, installs the schedule again and sends again
            wait_until(
                lambda: [sent for sent in tap.by({beat.pid}) if sent.at > restarted],
                timeout=LOCK_TIMEOUT + 30,
                message="beat sending tasks after Redis came back",
            )
        assert beat.running
        assert "lost the schedule lock" in beat.log_text()


def test_a_beat_started_while_redis_is_down_waits_and_schedules_once_redis_is_up(live_services, tmp_path):
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.WEBHOOK_QUEUE]
    with beat_stack(tmp_path, redis_url=None, aws_endpoint_url=live_services["moto_url"]) as stack:
        # Given Redis down when beat starts
        stack.stop_redis()
        beat = stack.start_beat()
        time.sleep(3)
        assert beat.running, beat.log_text()[-2000:]

        # When Redis comes up
        stack.start_redis()
        with BrokerTap(stack.redis_url, queues) as tap:
            # Then the same beat takes the lock, installs the schedule and sends
            wait_until(lambda: tap.by({beat.pid}), timeout=LOCK_TIMEOUT + 30, message="beat sending tasks")
        assert beat.running
        assert "cannot reach Redis at start" in beat.log_text()
