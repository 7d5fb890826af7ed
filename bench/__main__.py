"""``python -m bench [intake|lifecycle|webhooks|retention|metrics] [options]``: one benchmark, or all in turn."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

BENCHMARKS = ("intake", "lifecycle", "webhooks", "retention", "metrics")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="dedicated database, created and dropped by the bench "
        "(default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/orchestrator_bench)",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="dedicated Redis db, flushed (default $BENCH_REDIS_URL or redis://127.0.0.1:6379/12)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="benchmark")
    for name in BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        sub = commands.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        _common(sub)
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings.test")
    from devstack.stack import exit_on_sigterm

    exit_on_sigterm()  # a terminated bench still stops every process it started
    parser = build_parser()
    args = parser.parse_args(argv)
    names = [args.benchmark] if args.benchmark else list(BENCHMARKS)
    failures = 0
    for name in names:
        run_args = args if args.benchmark else parser.parse_args([name])
        try:
            importlib.import_module(f"bench.{name}").run(run_args)
        except KeyboardInterrupt:
            return 130
        except Exception:  # a benchmark that could not run is reported; the others still run
            failures += 1
            print(f"\nbench {name} could not run:", file=sys.stderr)
            traceback.print_exc()
    # Benchmarks never fail on timing; a non-zero exit means one could not run at all.
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
