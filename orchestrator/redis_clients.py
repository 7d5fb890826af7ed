"""Short-timeout Redis clients for the small shared state kept beside the broker (endpoint slots, alert-mail
windows): one per process, so a forked worker never shares its parent's sockets, and keys named per database
so two installations sharing a Redis never share state."""

import os

import redis
from django.conf import settings
from django.db import connection

_clients: dict[int, redis.Redis] = {}


def redis_client() -> redis.Redis:
    client = _clients.get(os.getpid())
    if client is None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        _clients[os.getpid()] = client
    return client


def redis_key(*parts: object) -> str:
    """``orchestrator:<database name>:<parts...>``."""
    return ":".join(["orchestrator", str(connection.settings_dict["NAME"]), *map(str, parts)])
