"""One settings object for the orchestration side, read from `EXIGO_SYNC_*` environment variables.

Connections are *not* configured here: the source and the warehouse both come from the dbt
profile/target (see `profiles.py`), so an operator configures one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from exigo_sync.dbt_runner import BatchBuild, DbtInvocation
    from exigo_sync.policy import SensitivePolicy
    from exigo_sync.topology import Topology

from exigo_sync import paths

# The repository root when running from a checkout (tests and tools read its files).
REPO_ROOT = paths.REPO_ROOT


def _default_profiles_dir() -> Path:
    # dbt's own order: DBT_PROFILES_DIR, then the working directory, then ~/.dbt.
    if env := os.environ.get("DBT_PROFILES_DIR"):
        return Path(env)
    if (Path.cwd() / "profiles.yml").exists():
        return Path.cwd()
    return Path.home() / ".dbt"


ENV_PREFIX = "EXIGO_SYNC_"


class SettingsError(ValueError):
    """An EXIGO_SYNC_* variable holds a value the setting refuses; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    @classmethod
    def load(cls) -> Settings:
        """The settings from the environment, or a SettingsError naming each variable whose
        value is refused and why (never a validation dump)."""
        try:
            return cls()
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "?"
                name = f"{ENV_PREFIX}{field.upper()}"
                value = os.environ.get(name, error.get("input"))
                problems.append(f"{name}={value!r}: {error['msg']}")
            raise SettingsError("; ".join(problems) + " (README: Configuration)") from None

    # The checkout's dbt_project/, or the copy an installed wheel ships (exigo_sync.paths).
    dbt_project_dir: Path = Field(default_factory=paths.dbt_project_dir)
    profiles_dir: Path = Field(default_factory=_default_profiles_dir)
    profile: str = "exigo_sync"
    target: str | None = Field(default=None, description="dbt target; None = profile default")
    # The profile output of the Exigo sync database; None = the output named `source`, if
    # any, else the warehouse target itself (exigo_sync.topology).
    source_target: str | None = None
    # auto | colocated | landed (exigo_sync.topology); auto = co-located when possible.
    topology: Literal["auto", "colocated", "landed"] = "auto"
    # Entities whose physical deletions each batch finds by comparing history with the
    # source's keys (dbt var exigo_deletion_sweep_entities). Exigo deletes payments physically.
    sweep_entities: list[str] = Field(default_factory=lambda: ["payments"])
    # H9: a sweep or reconciliation that would delete more than this share of an entity's live
    # keys, or whose source key read returns nothing, deletes nothing and fails the batch.
    deletion_guard_share: float = Field(default=0.05, ge=0, le=1)
    # dbt selector for the merge; None = staging and everything downstream (+ their tests).
    dbt_select: str | None = None
    # dbt --exclude (space-separated selectors). dbt unit tests need no exclusion: the project
    # enables them only with the var exigo_run_unit_tests (development/CI), never in a batch.
    dbt_exclude: str | None = None
    # Where dbt writes its artifacts and logs; partial parsing stays warm between batches here.
    # None: dbt_project/target and dbt_project/logs in a checkout, else under
    # $XDG_STATE_HOME/exigo-sync (exigo_sync.paths): never inside an installed package.
    dbt_target_path: Path | None = None
    dbt_log_path: Path | None = None
    # What dbt.log keeps: `debug` adds every statement dbt sent (for a diagnosis), at about 7%
    # of a batch's dbt CPU.
    dbt_log_level_file: Literal["debug", "info", "warn", "error", "none"] = "info"
    # Where `exigo-sync docs` puts the static docs site (index.html); None = <dbt target path>/docs.
    docs_dir: Path | None = None
    # DuckDB warehouse: the read-only copy published after every merged batch, for analysts and
    # BI tools (exigo_sync.warehouse.analytics_copy). None = <warehouse>.analytics.duckdb next
    # to the warehouse file; "off" = no copy. Ignored for SQL Server (readers use the server).
    analytics_copy_path: str | None = None
    # DuckDB warehouse: a batch of at least this many queue rows (an initial load, a replay from
    # far back) runs dbt on one thread, whatever the profile says. Its staging models are
    # memory-bound, and two at once share DuckDB's memory limit and spill: the initial load of
    # 1M customers (21.8M rows) took 530 s and 4.2 GB on two threads, 489 s and 4.0 GB on one.
    # Smaller batches gain from the profile's second thread.
    duckdb_one_thread_rows: int = Field(default=1_000_000, ge=0)
    # dbt threads on DuckDB: read by the example profile (`threads`), which cannot reject a
    # bad value (Jinja's `int` turns "abc" into 0); validated here so such a run stops at once,
    # naming the setting.
    dbt_threads: int = Field(default=2, ge=1)

    overlap_minutes: float = Field(default=10.0, ge=0)
    # W4: a ModifiedDate more than this many hours after its batch's refresh (the server clock)
    # is in the future: its version time is capped at the refresh, and it is no reading of the
    # data's clock (W1). Wide enough for a data clock in any time zone ahead of the server's.
    future_tolerance_hours: float = Field(default=24.0, ge=1)
    # The first batch (no merged batch yet) loads everything (W1), unless one of these is set:
    # a start on the source clock, or a lookback from the source clock (the vendor's first call
    # takes 24 hours). Either leaves the warehouse partial until a full load (`run --full`).
    initial_start: datetime | None = None
    initial_lookback_hours: float | None = Field(default=None, gt=0)

    lock_timeout_seconds: float = Field(default=60.0, ge=0)
    # The nightly reconciliation, the only run that finds deletions the queue cannot show, waits
    # this long for a batch in flight rather than giving up after lock_timeout_seconds (a batch
    # and the reconciliation scheduled at the same minute must not race each other away).
    reconcile_lock_timeout_seconds: float = Field(default=3600.0, ge=0)
    # A holder on another host whose heartbeat is older than this is taken for dead (its host
    # is gone). On this host a holder is dead exactly when its process is. SQL Server locks are
    # beaten every lock_heartbeat_seconds; DuckDB locks between steps (one process per file).
    lock_stale_seconds: float = Field(default=600.0, gt=0)
    lock_heartbeat_seconds: float = Field(default=30.0, gt=0)
    lock_poll_seconds: float = Field(default=1.0, gt=0)
    # A batch running longer than this is stopped like a SIGTERM: marked failed, locks
    # released, dbt stopped (R4). Generous: an initial load of millions of rows takes a while.
    flow_timeout_seconds: float = Field(default=2 * 3600.0, gt=0)
    # Names the lock; default is derived from the source connection (one lock per source).
    source_name: str | None = None

    # S2 `hash` is keyed with EXIGO_SYNC_HASH_KEY (read from the environment, never a field
    # here), or with the value of the Prefect Secret block named by this (exigo_sync.hash_key).
    hash_key_block: str | None = None

    # R3: how many times a batch refreshes when another consumer's queue.Refresh replaced the
    # queue tables before this batch pinned its copy (each attempt: refresh + copy + compare).
    snapshot_attempts: int = Field(default=3, ge=1)

    # Seconds a statement at a SQL Server source may run (queue.Refresh included) before the
    # driver cancels it: a transient error (B5), retried like one. None (unset) = the source
    # profile output's `query_timeout` (dbt-sqlserver's default: none); 0 = none. A stop or the
    # flow timeout cancels a waiting statement whatever this is (R4).
    source_query_timeout_seconds: int | None = Field(default=None, ge=0)

    refresh_retries: int = Field(default=3, ge=0)
    refresh_retry_delay_seconds: float = Field(default=5.0, ge=0)

    # The console of a run shows every line (dbt's nodes, each table pinned), not one line per
    # step: `exigo-sync run --verbose` sets it (exigo_sync.console).
    verbose: bool = False

    schedule_cron: str = "*/15 * * * *"
    schedule_timezone: str = "UTC"
    # `serve`'s nightly reconciliation (prefect.yaml has the same for deployments).
    reconcile_cron: str = "30 2 * * *"

    @field_validator(
        "dbt_project_dir", "profiles_dir", "dbt_target_path", "dbt_log_path", "docs_dir"
    )
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """A folder given relative (EXIGO_SYNC_PROFILES_DIR=data/profiles) means the one under
        the directory the command was started in; every message names it absolute."""
        return value.expanduser().resolve() if value is not None else None

    @property
    def overlap(self) -> timedelta:
        return timedelta(minutes=self.overlap_minutes)

    def overlap_for(self, overlap_minutes: float | None) -> timedelta:
        """The window overlap of a run: its own override, else the setting (W1), refused the
        same way wherever it comes from (W3)."""
        from exigo_sync.window import overlap_option

        return overlap_option(overlap_minutes, self.overlap)

    @property
    def initial_lookback(self) -> timedelta | None:
        if self.initial_lookback_hours is None:
            return None
        return timedelta(hours=self.initial_lookback_hours)

    @property
    def future_tolerance(self) -> timedelta:
        return timedelta(hours=self.future_tolerance_hours)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.lock_stale_seconds)

    def threads_for_batch(self, warehouse_engine: str, queue_rows: int) -> int | None:
        """dbt's --threads for a batch: 1 for a large batch on DuckDB
        (`duckdb_one_thread_rows`), otherwise None (the profile's)."""
        if warehouse_engine == "duckdb" and queue_rows >= self.duckdb_one_thread_rows:
            return 1
        return None

    @property
    def dbt_target_dir(self) -> Path:
        """Where dbt writes its target (its parse, run_results.json): the setting, else the
        default under the data directory."""
        return self.dbt_target_path or paths.dbt_target_dir()

    def dbt_invocation(self, target: str) -> DbtInvocation:
        from exigo_sync.dbt_runner import DbtInvocation

        return DbtInvocation(
            project_dir=self.dbt_project_dir,
            profiles_dir=self.profiles_dir,
            target=target,
            target_path=self.dbt_target_dir,
            log_path=self.dbt_log_path or paths.dbt_log_dir(),
            log_level_file=self.dbt_log_level_file,
        )

    def sensitive_policy(self) -> SensitivePolicy:
        """S2: the sensitive-column policy of the dbt project this run builds (its
        dbt_project.yml vars), which the landing applies before dbt runs."""
        from exigo_sync.policy import SensitivePolicy

        return SensitivePolicy.load(self.dbt_project_dir)

    def topology_for(self, target: str | None = None) -> Topology:
        from exigo_sync.topology import resolve_topology

        return resolve_topology(
            self.profiles_dir, self.profile, target=target or self.target,
            source_target=self.source_target, topology=self.topology,
            source_query_timeout=self.source_query_timeout_seconds,
        )  # fmt: skip

    def retry_delays(self) -> list[float]:
        """Exponential backoff between refresh attempts (B5): d, 2d, 4d, ..."""
        return [self.refresh_retry_delay_seconds * 2**i for i in range(self.refresh_retries)]

    def source_retries(self) -> dict[str, Any]:
        """Prefect task options of the steps that talk to the source (B5)."""
        return {"retries": self.refresh_retries, "retry_delay_seconds": self.retry_delays()}

    def batch_build(
        self,
        topology: Topology,
        *,
        swept: list[str],
        confirm_deletions: list[str],
        reconcile: bool,
        select: str | None,
        queue_rows: int,
        env: Mapping[str, str] | None = None,
    ) -> BatchBuild:
        """The batch's `dbt build`: its vars stay the same from batch to batch (dbt reads the
        batch from the ledger), so dbt's partial parse stays warm."""
        from exigo_sync.dbt_runner import BatchBuild

        return BatchBuild(
            invocation=self.dbt_invocation(topology.warehouse.name),
            batch_vars={
                "exigo_deletion_sweep_entities": swept,
                "exigo_deletion_guard_share": self.deletion_guard_share,
                "exigo_confirm_deletions": confirm_deletions,
                "exigo_future_tolerance_hours": self.future_tolerance_hours,
            },
            select=select or self.dbt_select,
            exclude=self.dbt_exclude,
            full_checks=reconcile,
            threads=self.threads_for_batch(topology.warehouse.type, queue_rows),
            env=dict(env or {}),
        )
