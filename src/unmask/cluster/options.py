"""The engine flags shared by `prepare`, `detect` and `eval` (standard library only, so
command modules may use it while `unmask --help` stays instant)."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any


def add_engine_arguments(
    p: argparse.ArgumentParser, format_help: str, formats: tuple[str, ...] = ("csv", "parquet")
) -> None:
    g = p.add_argument_group("engine (see docs/cluster.md)")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: processes on this machine (default); ray: Ray Data actors on a Ray "
        "cluster (pip install 'unmask[cluster]')",
    )
    g.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="with --engine ray: the cluster to join (auto, host:6379, ray://host:10001); "
        "default: start a local Ray instance for this run",
    )
    g.add_argument("--format", choices=formats, default="csv", help=format_help)


def engine_session(args: argparse.Namespace, num_cpus: int | None = None) -> Any:
    """A context: Ray for the run with --engine ray, nothing with the local engine."""
    from unmask.errors import UnmaskError

    if args.engine != "ray":
        if args.address:
            raise UnmaskError("--address joins a Ray cluster: use it with --engine ray")
        return contextlib.nullcontext()
    from unmask.cluster.session import ray_session

    return ray_session(args.address, num_cpus, lazy=True)
