"""Celery beat on every node, one scheduling at a time: RedBeat keeps the schedule in Redis and a lock there.

RedBeat (``celery-redbeat``) stores each periodic task's last run in Redis, so whichever beat holds the lock
continues where the previous holder stopped, and a task a dying holder already sent is not sent again in the
same interval (Celery records the run before it sends). A beat that starts while another holds the lock waits
for it; the holder extends the lock on every tick (at least every ``BEAT_MAX_LOOP_INTERVAL_SECONDS``), so when
it dies a waiting beat takes over within ``BEAT_LOCK_TIMEOUT_SECONDS`` plus one loop interval.

``LockedScheduler`` adds what RedBeat leaves to a process manager: a holder that loses the lock (Redis
restarted empty, a partition longer than the lock) or cannot reach Redis during a tick stops scheduling and
becomes a waiting beat, instead of exiting; when it takes the lock again it re-installs the schedule's entries
(a Redis that restarted empty has none, and nothing would ever be due again).
"""

import logging
from typing import Any

from django.conf import settings
from redbeat import RedBeatScheduler
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, get_redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

logger = logging.getLogger("celery.beat")


def redbeat_options(*, broker_url: str) -> dict[str, Any]:
    """RedBeat's settings from ours. RedBeat reads them without the ``CELERY_`` namespace (and would forward
    no client options otherwise), so the scheduler sets them on the Celery app itself."""
    return {
        "redbeat_redis_url": settings.BEAT_REDIS_URL or broker_url,
        "redbeat_key_prefix": settings.BEAT_KEY_PREFIX,
        "redbeat_lock_timeout": settings.BEAT_LOCK_TIMEOUT_SECONDS,
        # A tick must not hang on a dead connection longer than the lock lasts.
        "redbeat_redis_options": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }


class LockedScheduler(RedBeatScheduler):
    """RedBeat's scheduler; a beat that loses the lock (or Redis) goes back to waiting for it."""

    lock: Lock | None  # RedBeat's (it ships no types): None while this beat does not hold it

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        app.conf.update(redbeat_options(broker_url=app.conf.broker_url))
        self._starting = True
        super().__init__(app, *args, **kwargs)
        self._starting = False

    def setup_schedule(self) -> None:
        try:
            super().setup_schedule()
        except RedisError as error:
            # A beat started while Redis is down waits for it like any beat without the lock (taking the lock
            # installs the schedule); later failures are the lock-taking code's to handle.
            if not self._starting:
                raise
            logger.warning("beat: cannot reach Redis at start (%s); waiting for it", error)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is None and not self._take_lock():
            return self.max_interval
        try:
            return super().tick(*args, **kwargs)
        except (LockError, RedisError) as error:
            logger.warning("beat: lost the schedule lock (%s); waiting to take it again", error)
            self.lock = None
            return self.max_interval

    def _take_lock(self) -> bool:
        """Take the lock if nobody holds it (without waiting); then (re)install the schedule's entries."""
        try:
            client = get_redis(self.app)
            lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
            lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # as RedBeat's: extend *to* the timeout
            if not lock.acquire(blocking=False):
                return False
            self.setup_schedule()
            self.lock = lock
        except RedisError as error:
            logger.warning("beat: cannot reach Redis for the schedule lock (%s)", error)
            return False
        logger.info("beat: Acquired lock")
        return True
