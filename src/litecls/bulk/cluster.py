"""Joining a Ray cluster, or starting a local one, with Ray's own output kept off the terminal.

Without an address, Ray starts on this machine with all its cores; with one (``auto`` for the
cluster this machine belongs to, ``ray://HOST:10001`` for Ray Client) the job runs there, and
every node needs ``pip install 'litecls[ray]'``. Unless ``verbose``, Ray's start-up banner,
its workers' log lines (``log_to_driver``), Ray Data's execution messages and progress bars
stay out of the user's terminal; Ray still writes them to its session logs
(``/tmp/ray/session_latest/logs``). What Ray's C++ core writes to the driver's stderr (e.g.
the warning every Ray Data actor pool with restarts triggers, ray-project/ray#53727) is
captured by ``litecls bulk`` itself (:func:`litecls.runtime.capture.fds_captured`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

from litecls.errors import BulkError
from litecls.evaluation.machine import usable_cores
from litecls.extras import require_extra


def quiet_ray_data(verbose: bool) -> None:
    """Ray Data's progress bars and console log lines only when ``verbose``."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = verbose
    context.enable_operator_progress_bars = verbose
    context.print_on_execution_start = verbose
    context.verbose_stats_logs = False
    level = logging.INFO if verbose else logging.ERROR
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):  # the console, not Ray's session log file
            handler.setLevel(level)


def connect(address: str | None = None, verbose: bool = False, feature: str = "litecls bulk",
            client_ok: bool = False) -> str:
    """Start or join Ray (once per process) and quieten it.

    Args:
        address: ``None`` for a local Ray on this machine's cores, ``auto``, a head's
            ``HOST:PORT`` or ``ray://HOST:PORT`` (Ray Client).
        verbose: let Ray's log lines and progress bars through.
        feature: what needs Ray, for the missing-extra message.
        client_ok: accept a ``ray://`` address (Ray Client). Ray Data does not run over Ray
            Client (in Ray 2.60 its executor needs the driver's core worker), so ``litecls
            bulk`` refuses one with a way that works.

    Returns:
        Where the job runs, for the user: "local Ray (N CPUs)" or the address.

    Raises:
        MissingExtraError: the ``ray`` extra is not installed.
        BulkError: the cluster cannot be reached.
    """
    require_extra("ray", feature)
    if address is not None and address.startswith("ray://") and not client_ok:
        raise BulkError(f"{feature} cannot run over Ray Client ({address}): Ray Data needs its driver on "
                        f"a node of the cluster. Run it there with --address auto, or submit it: "
                        f"ray job submit --address http://HEAD:8265 -- litecls bulk ... --address auto")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if not verbose:
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
        os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if not ray.is_initialized():
        quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR,
                 "include_dashboard": False if address is None else None}
        try:
            if address is None:
                # "local": a new Ray on this machine, even where a cluster runs (or RAY_ADDRESS says one).
                ray.init(address="local", num_cpus=usable_cores(), **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BulkError(f"cannot reach the Ray cluster at {address}: "
                            f"{' '.join(str(exc).split())[:300]}") from None
    quiet_ray_data(verbose)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    where = "local Ray" if address is None else f"Ray cluster {address}"
    return f"{where} ({nodes} node{'s' if nodes != 1 else ''}, {cpus} CPUs)"


@contextlib.contextmanager
def terminal_kept_quiet(verbose: bool) -> Iterator[TextIO]:
    """A stream to the user's stderr; unless ``verbose``, descriptor 2 itself is captured meanwhile.

    Ray's C++ core (and the processes of a local Ray, started meanwhile) write to descriptor 2
    directly. What was captured is printed (its last 40 lines) only if the block fails.

    Args:
        verbose: capture nothing; the stream is ``sys.stderr``.

    Yields:
        The stream for the command's own lines (progress, summary).
    """
    if verbose:
        yield sys.stderr
        return
    from litecls.runtime.capture import fds_captured

    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    captured: list[str] = []
    try:
        with fds_captured(2) as captured:
            yield terminal
    except BaseException:
        for line in captured[-40:]:
            print(line, file=terminal)
        raise
    finally:
        terminal.close()
