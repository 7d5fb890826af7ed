"""The image's entry point: runs its arguments as the container's command, with ``DATABASE_URL`` built from
``DATABASE_HOST``, ``DATABASE_PORT``, ``DATABASE_NAME``, ``DATABASE_USER``, ``DATABASE_PASSWORD`` and
``DATABASE_SSLMODE`` (default ``require``) when it is not set itself.

ECS can hand a container single fields of a secret but cannot join them into a URL: the CDK app
(``deploy/aws``) passes the RDS secret's user name and password this way, so a rotated password needs no
other change than a new task. User name and password are percent-encoded.
A set ``DATABASE_URL`` (``docker-compose.yml``, ``scripts/run``) is left as it is.
"""

import os
import sys
from collections.abc import Mapping
from urllib.parse import quote

PARTS = ("DATABASE_HOST", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD")


def database_url(environ: Mapping[str, str]) -> str | None:
    if environ.get("DATABASE_URL") or not environ.get("DATABASE_HOST"):
        return None
    missing = [name for name in PARTS if not environ.get(name)]
    if missing:
        sys.exit(f"entrypoint: DATABASE_HOST is set but {', '.join(missing)} is not")
    user = quote(environ["DATABASE_USER"], safe="")
    password = quote(environ["DATABASE_PASSWORD"], safe="")
    host, port = environ["DATABASE_HOST"], environ.get("DATABASE_PORT") or "5432"
    name, sslmode = quote(environ["DATABASE_NAME"], safe=""), environ.get("DATABASE_SSLMODE") or "require"
    return f"postgres://{user}:{password}@{host}:{port}/{name}?sslmode={quote(sslmode, safe='')}"


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("entrypoint: no command given")
    url = database_url(os.environ)
    if url:
        os.environ["DATABASE_URL"] = url
    os.execvp(argv[0], argv)  # noqa: S606 (the container's command, as the platform gave it)


if __name__ == "__main__":
    main(sys.argv[1:])
