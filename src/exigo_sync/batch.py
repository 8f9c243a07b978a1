"""The bookkeeping around one batch, so the flow body can read like the process it runs:
which step it is in, how long each took, the heartbeat between steps, the fault-injection
points, and what happens when a step fails or the run is stopped.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from exigo_sync.faults import FAULT_POINTS, fault
from exigo_sync.source import SourceError
from exigo_sync.topology import Topology
from exigo_sync.warehouse.ledger import Ledger
from exigo_sync.warehouse.live_status import LiveStatusWriter
from exigo_sync.warehouse.lock import RunLock


class SyncFailed(RuntimeError):
    """The batch failed; the message is secret-free and says where."""


class SnapshotReplaced(RuntimeError):
    """Another consumer's queue.Refresh kept replacing the queue tables between this batch's
    refresh and its copy of them (R3): nothing was merged, the next run redoes the window."""


def describe_stop(exc: BaseException) -> str:
    """What stopped a run, in an operator's words (for the ledger and the console)."""
    from prefect.exceptions import TerminationSignal

    if isinstance(exc, TerminationSignal):
        name = signal.Signals(exc.signal).name if exc.signal else "SIGTERM"
        return f"stopped by {name} (a stop, a shutdown or a cancelled flow run)"
    if isinstance(exc, KeyboardInterrupt):
        return "stopped by SIGINT (Ctrl-C)"
    if isinstance(exc, TimeoutError | _cancelled_error()):
        return "stopped by the flow timeout (EXIGO_SYNC_FLOW_TIMEOUT_SECONDS) or a cancellation"
    return f"{type(exc).__name__}: {exc}"


def _cancelled_error() -> type[BaseException]:
    from prefect._internal.concurrency.cancellation import CancelledError

    return CancelledError


@dataclass
class Batch:
    topology: Topology
    logger: logging.Logger | logging.LoggerAdapter[Any]
    id: int | None = None
    step_name: str = "lock"
    timings: dict[str, float] = field(default_factory=dict)
    lock: RunLock | None = None
    flow_run_id: str | None = None
    reconcile: bool = False
    _started: float = field(default_factory=time.monotonic)
    live: LiveStatusWriter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # DuckDB: what `exigo-sync status` reads while this batch holds the warehouse file.
        self.live = LiveStatusWriter(self.topology.warehouse)

    @contextmanager
    def run(self) -> Iterator[None]:
        """Outermost: an error becomes one secret-free line naming the step and the batch.
        A stop (signal, timeout) goes on as itself, so Prefect records it as such."""
        done = threading.Event()
        _watch_supervisor(self.logger, done)
        ended, message = "stopped", ""
        try:
            yield
            ended = "merged"
        except Exception as exc:
            ended, message = "failed", self.describe_failure(exc)
            if self.id is not None:
                raise SyncFailed(
                    f"batch {self.id} failed at step '{self.step_name}' (watermark unchanged): "
                    f"{message}"
                ) from None
            raise SyncFailed(f"exigo-sync failed at step '{self.step_name}': {message}") from None
        except BaseException as exc:
            message = describe_stop(exc)
            self.logger.error("%s at step '%s'", message, self.step_name)
            raise
        finally:
            done.set()
            self.live.end(ended, self.id, message)

    def describe_failure(self, exc: BaseException) -> str:
        """The secret-free line a failure leaves in the ledger and on the console; a source
        failure says which source and how to test it."""
        message = self.topology.scrub(describe_stop(exc))
        if isinstance(exc, SourceError):
            message += f" ({self.topology.source_hint()})"
        return message

    def preflight(self) -> None:
        """Before anything is written: the source is there. A DuckDB source file must exist
        (else the error names what sets its path); a DuckDB warehouse that does not exist yet
        is created only once the source has answered, so a run that fails on the source never
        leaves an empty warehouse behind. An existing warehouse gets the failure in its
        ledger instead (B5: `holding`)."""
        self.step_name = "source"
        self.topology.require_source_file()
        warehouse = self.topology.warehouse
        if warehouse.type == "duckdb" and not warehouse.warehouse_path().exists():
            client = self.topology.source_client()
            try:
                client.clock()
            finally:
                client.close()
        self.step_name = "lock"

    @contextmanager
    def holding(self, lock: RunLock) -> Iterator[None]:
        """Inside the lock: a failed or stopped batch is marked `failed` before the lock goes,
        so no rival ever sees it in flight."""
        self.lock = lock
        self.timings["lock"] = time.monotonic() - self._started
        self.live.begin(lock_name=lock.name, token=lock.token, flow_run_id=self.flow_run_id)
        if lock.abandoned_batches:
            self.logger.warning(
                "marked %d abandoned in-flight batch(es) failed", lock.abandoned_batches
            )
        try:
            yield
        except BaseException as exc:
            if self.id is not None:
                self._record_failure(exc)
            elif isinstance(exc, SourceError):
                # B5: the source failed before the batch had a row (its window reads the
                # source's clock): the ledger still records the attempt, the watermark stays.
                self._record_failed_start(exc)
            raise

    def snapshot_replaced(self, attempt: int, attempts: int, replaced: list[str]) -> None:
        """R3: the copy is not the snapshot this batch's refresh produced. Refresh again (the same
        start: the window loses nothing), or stop after the last attempt."""
        detail = "; ".join(replaced)
        if attempt >= attempts:
            raise SnapshotReplaced(
                f"another consumer's queue.Refresh replaced the queue tables between this "
                f"batch's refresh and its copy, {attempts} times ({detail}); nothing was merged "
                "(R3)"
            )
        self.logger.warning(
            "another consumer refreshed the queue between this batch's refresh and its copy "
            "(%s): refreshing again from the same start (attempt %d of %d)",
            detail, attempt + 1, attempts,
        )  # fmt: skip

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.step_name = name
        if self.lock is not None:
            if self.lock.concurrent_heartbeat:
                self.lock.check()  # a heartbeat thread found the lock gone (R2)
            else:
                self.lock.heartbeat()  # DuckDB: only between steps (see RunLock)
        self.live.step(name, self.id)
        _fault(f"before_{name}")
        started = time.monotonic()
        yield
        self.timings[name] = time.monotonic() - started
        _fault(f"after_{name}")

    def _record_failed_start(self, exc: BaseException) -> None:
        try:
            fence = self.lock.fence if self.lock is not None else None
            with Ledger.open(self.topology.warehouse, fence=fence) as ledger:
                self.id = ledger.record_failed_start(
                    flow_run_id=self.flow_run_id, target_name=self.topology.warehouse.name,
                    error=self.describe_failure(exc), reconciled=self.reconcile,
                )  # fmt: skip
        except Exception as ledger_exc:
            self.logger.error(
                "could not record the failure in the ledger: %s",
                self.topology.scrub(str(ledger_exc)),
            )

    def _record_failure(self, exc: BaseException) -> None:
        assert self.id is not None
        message = self.describe_failure(exc)
        try:
            fence = self.lock.fence if self.lock is not None else None
            with Ledger.open(self.topology.warehouse, fence=fence) as ledger:
                ledger.mark_failed(self.id, message, getattr(exc, "invocation_id", None))
        except Exception as ledger_exc:  # the warehouse may be what failed; the next run
            # finds the batch in flight and marks it abandoned
            self.logger.error(
                "could not record the failure in the ledger: %s",
                self.topology.scrub(str(ledger_exc)),
            )


def _watch_supervisor(
    logger: logging.Logger | logging.LoggerAdapter[Any], done: threading.Event
) -> None:
    """A flow run started by a worker or `serve` (Prefect sets PREFECT__FLOW_RUN_ID for it)
    stops like a SIGTERM when that process dies: it can no longer report to Prefect, and a
    batch left running unsupervised would hold the source's lock for nobody. A CLI run (no
    supervisor; `nohup` may reparent it on purpose) is never stopped this way."""
    if not os.environ.get("PREFECT__FLOW_RUN_ID"):
        return
    supervisor = os.getppid()

    def watch() -> None:
        while not done.wait(1.0):
            if os.getppid() != supervisor:
                logger.error("the worker or `serve` process running this batch is gone: stopping")
                _thread.interrupt_main(signal.SIGTERM)
                return

    threading.Thread(target=watch, name="exigo-sync-supervisor-watch", daemon=True).start()


def _fault(point: str) -> None:
    if point in FAULT_POINTS:
        fault(point)
