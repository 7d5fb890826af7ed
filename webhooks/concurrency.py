"""At most WEBHOOK_ENDPOINT_MAX_IN_FLIGHT requests in flight to one subscriber endpoint, across all workers.

Without a limit, one slow receiver fills every delivery thread (each waits out its read timeout) and the
healthy endpoints queue behind it: head-of-line blocking. With it, a delivery whose endpoint is busy is
put back with a short delay instead of taking a thread, so a slow endpoint holds at most its share.

The slots are a Redis sorted set per endpoint whose members are delivery ids scored by lease expiry: a
worker that dies mid-request frees its slot when the lease runs out. If Redis (the broker) is unreachable
the limit is not applied: a delivery is never held back because the limiter cannot be asked.
"""

import logging
import random
import time

import redis
from django.conf import settings

from orchestrator.redis_clients import redis_client, redis_key

logger = logging.getLogger(__name__)

# KEYS[1] the endpoint's set; ARGV: now, lease expiry, delivery id, limit, key TTL (s).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


def _key(endpoint_id: int) -> str:
    # Endpoint ids are per database: two installations sharing a Redis must not share slots.
    return redis_key("endpoint-in-flight", endpoint_id)


def slot_acquire(*, endpoint_id: int, delivery_id: int, lease_seconds: float) -> bool:
    """Take one of the endpoint's slots for this delivery (again, if it already holds one); False if all
    are taken."""
    limit = settings.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT
    if limit <= 0:
        return True
    now = time.time()
    try:
        taken = redis_client().eval(
            _ACQUIRE, 1, _key(endpoint_id), now, now + lease_seconds, delivery_id, limit, int(lease_seconds) + 60
        )
    except redis.RedisError as error:
        logger.warning("endpoint concurrency limit not applied (Redis unavailable): %s", error.__class__.__name__)
        return True
    return bool(taken)


def slot_release(*, endpoint_id: int, delivery_id: int) -> None:
    if settings.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT <= 0:
        return
    try:
        redis_client().zrem(_key(endpoint_id), delivery_id)
    except redis.RedisError:  # the lease expires by itself
        logger.warning("endpoint slot not released (Redis unavailable); it expires with its lease")


def busy_delay() -> float:
    """When to try a delivery whose endpoint is busy again: WEBHOOK_ENDPOINT_BUSY_DELAY_SECONDS, jittered so
    the waiting deliveries do not all come back at once."""
    return settings.WEBHOOK_ENDPOINT_BUSY_DELAY_SECONDS * random.uniform(0.5, 1.5)
