"""What a LOCAL build may run, what it sees and who it runs as.

- **Command**: the tier's project is a command line that must be one of ``LOCAL_BUILD_COMMANDS`` (compared
  as argv, so quoting and spacing do not matter), e.g. ``demo/build.sh provision``. Its executable is
  resolved under ``LOCAL_BUILD_ROOT`` and must stay inside it. No shell runs it.
- **Environment**: built from nothing. A fixed base (``PATH`` = ``LOCAL_BUILD_PATH``, ``HOME`` and ``TMPDIR``
  in the build's own scratch directory, ``LANG=C.UTF-8``), the build variables (their names already passed
  ``orchestrator.env_names``' LOCAL rule), the variables the runner provides (``CODEBUILD_BUILD_ID``...), and
  the worker's own variables named in ``LOCAL_BUILD_PASSTHROUGH_ENV``, which never replace anything else.
- **User**: a worker running as root runs the build as ``LOCAL_BUILD_USER`` (``nobody`` by default), with
  that user's group and no supplementary groups; when that user is missing or is root, nothing runs. A
  worker that is not root runs builds as itself.
"""

import os
import pwd
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from tenants.builders.base import BuildRejected

BASE_LANG = "C.UTF-8"


def _argv(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise BuildRejected(f"LOCAL build command {command!r} cannot be parsed: {error}.") from None
    if not argv:
        raise BuildRejected("The tier has no LOCAL build command.")
    return argv


def command_listed(command: str) -> bool:
    """True when ``command`` is one of ``LOCAL_BUILD_COMMANDS``."""
    try:
        argv = _argv(command)
    except BuildRejected:
        return False
    listed = set()
    for allowed in settings.LOCAL_BUILD_COMMANDS:
        try:
            listed.add(tuple(_argv(allowed)))
        except BuildRejected:
            continue  # an unparsable entry allows nothing
    return tuple(argv) in listed


def command_argv(command: str) -> list[str]:
    """The tier's command as an argv, if it is allowed; its executable resolved inside ``LOCAL_BUILD_ROOT``."""
    argv = _argv(command)
    if not command_listed(command):
        raise BuildRejected(f"LOCAL build command {command!r} is not one of LOCAL_BUILD_COMMANDS.")
    root = Path(settings.LOCAL_BUILD_ROOT).resolve()
    executable = (root / argv[0]).resolve()
    if not executable.is_relative_to(root):
        raise BuildRejected(f"LOCAL build command {argv[0]!r} must be a script inside {root}.")
    if not executable.is_file():
        raise BuildRejected(f"LOCAL build command {argv[0]!r} not found under {root}.")
    if not os.access(executable, os.X_OK):
        raise BuildRejected(f"LOCAL build command {argv[0]!r} is not executable.")
    return [str(executable), *argv[1:]]


@dataclass(frozen=True)
class BuildUser:
    name: str
    uid: int
    gid: int


def build_user() -> BuildUser | None:
    """Who a build runs as: None for "as this worker" (not root); raises when root cannot step down."""
    if os.geteuid() != 0:
        return None
    name = settings.LOCAL_BUILD_USER
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise BuildRejected(
            f"The worker runs as root and LOCAL_BUILD_USER {name!r} is not a user of this machine: "
            "refusing to run the build as root."
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise BuildRejected(
            f"LOCAL_BUILD_USER {name!r} is root (or in group root): refusing to run the build with root rights."
        )
    return BuildUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def popen_identity() -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run the child as ``build_user()`` (none when not root)."""
    user = build_user()
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": [], "umask": 0o077}


def command_runnable(argv: list[str]) -> None:
    """Raises ``BuildRejected`` when the user the build runs as may not read and execute the command's file:
    a root worker's own access check passes where the build itself would then fail to start."""
    user = build_user()
    if user is None:
        return
    status = os.stat(argv[0])
    if status.st_uid == user.uid:
        needed = stat.S_IRUSR | stat.S_IXUSR
    elif status.st_gid == user.gid:
        needed = stat.S_IRGRP | stat.S_IXGRP
    else:
        needed = stat.S_IROTH | stat.S_IXOTH
    if status.st_mode & needed != needed:
        raise BuildRejected(
            f"LOCAL build command {argv[0]!r} cannot be read and run by LOCAL_BUILD_USER {user.name!r}."
        )


@dataclass(frozen=True)
class Scratch:
    """The build's own directory: its HOME, its TMPDIR and the outputs file, owned by the build's user."""

    home: Path
    tmp: Path
    outputs: Path


def scratch_prepare(workdir: Path) -> Scratch:
    """Create HOME, TMPDIR and the outputs file in ``workdir`` (a fresh private directory), owned by the
    user the build runs as. Raises ``BuildRejected`` when a root worker cannot step down."""
    user = build_user()
    scratch = Scratch(home=workdir / "home", tmp=workdir / "tmp", outputs=workdir / "outputs.env")
    scratch.home.mkdir(mode=0o700, exist_ok=True)
    scratch.tmp.mkdir(mode=0o700, exist_ok=True)
    scratch.outputs.touch(mode=0o600)
    if user is not None:
        for path in (workdir, scratch.home, scratch.tmp, scratch.outputs):
            os.chown(path, user.uid, user.gid)
    return scratch


def child_environment(*, variables: Mapping[str, str], runner: Mapping[str, str], scratch: Scratch) -> dict[str, str]:
    """The complete environment of the build's process (see the module docstring for the precedence)."""
    base = {"PATH": settings.LOCAL_BUILD_PATH, "HOME": str(scratch.home), "TMPDIR": str(scratch.tmp), "LANG": BASE_LANG}
    passed = {name: os.environ[name] for name in settings.LOCAL_BUILD_PASSTHROUGH_ENV if name in os.environ}
    return {**passed, **variables, **base, **runner}
