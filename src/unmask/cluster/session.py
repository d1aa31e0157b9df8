"""Join a Ray cluster (`--address`) or start a small local one for the run, and stop it after."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from unmask.errors import UnmaskError

OBJECT_STORE_MB = 200  # a local instance on a laptop: crops pass through, nothing is kept


def require_ray():
    """`ray` and `ray.data`, or one clear line saying how to get them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UnmaskError(
            "--engine ray needs Ray: pip install 'unmask[cluster]' (ray[data])"
        ) from None
    return ray


def _quiet_ray_data() -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # unmask shows its own tqdm bar
    with contextlib.suppress(AttributeError):
        ctx.print_on_execution_start = False
    with contextlib.suppress(AttributeError):
        ctx.enable_rich_progress_bars = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


_PENDING: dict[str, Any] | None = None  # a lazy session's settings, until work needs Ray


def _start(ray: Any, address: str | None, num_cpus: int | None) -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": bool(os.environ.get("UNMASK_DEBUG")),
        "logging_level": logging.WARNING,
    }
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                object_store_memory=OBJECT_STORE_MB * 1024 * 1024,
                **kwargs,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        raise UnmaskError(f"could not start Ray on {where}: {str(exc).splitlines()[0]}") from None
    _quiet_ray_data()


@contextlib.contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, lazy: bool = False
) -> Iterator[Any]:
    """Ray, initialised for the duration of the block and shut down after it. An already
    initialised Ray (a caller's or a test's) is used as it is and left running. `address`:
    "auto", "ray://host:10001" or "host:6379" joins that cluster; None starts a local
    instance with `num_cpus` logical CPUs (default: the machine's cores) and a small object
    store. `lazy`: start it only when work first needs it (`ensure_ray`), so a re-run with
    nothing left to do costs no start-up."""
    global _PENDING
    ray = require_ray()
    if ray.is_initialized():
        _quiet_ray_data()
        yield ray
        return
    if lazy:
        _PENDING = {"address": address, "num_cpus": num_cpus}
    else:
        _start(ray, address, num_cpus)
    try:
        yield ray
    finally:
        _PENDING = None
        if ray.is_initialized():
            ray.shutdown()


def ensure_ray() -> Any:
    """The running Ray; starts a lazy session's instance on first use."""
    ray = require_ray()
    if not ray.is_initialized():
        if _PENDING is None:
            raise UnmaskError("the Ray engine needs a Ray session (unmask.cluster.session)")
        _start(ray, **_PENDING)
    return ray


def cluster_gpus() -> int:
    """GPUs in the running cluster (0 on CPU-only clusters)."""
    ray = ensure_ray()
    return int(ray.cluster_resources().get("GPU", 0))


def data_context():
    """Ray Data's context with results kept in input order (the engines rely on it)."""
    from ray.data import DataContext

    ensure_ray()
    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
    return ctx


@contextlib.contextmanager
def one_line_errors(what: str) -> Iterator[None]:
    """A failure inside Ray (an actor that cannot start, a worker's exception) -> one
    UnmaskError line naming the cause, not Ray's multi-page traceback. Bad input files never
    get here: the stages record them as rejected/error rows."""
    import ray.exceptions

    try:
        yield
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UnmaskError):
            raise UnmaskError(str(cause)) from None
        lines = [x.strip() for x in str(cause or exc).splitlines() if x.strip()]
        last = lines[-1] if lines else exc.__class__.__name__
        raise UnmaskError(
            f"{what} on Ray failed: {last[:300]} (UNMASK_DEBUG=1 shows the workers' logs)"
        ) from None
