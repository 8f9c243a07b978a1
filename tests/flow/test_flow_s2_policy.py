"""S2 through real flow runs, with the change made where Exigo makes it: a column added to the
simulator's dbo. A column whose name looks sensitive stops the batch naming the policy line; a
name built to be SQL is carried as a name; a value of a masked column that cannot be cast is
named nowhere (dbt's log and artifacts, the run's log, the ledger). The dbt-level S2 tests:
tests/dbt/test_s2_policy.py."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from exigo_sync.settings import REPO_ROOT
from tests.flow.helpers import SyncEnv, prefect_logs_and_artifacts

HOSTILE = 'x"; DROP TABLE exigo_sync.batches; --'


def _edit_customer(env: SyncEnv, changes: dict) -> None:
    sim = env.sim
    sim.edit_row("Customers", 1, changes, sim.now() - timedelta(minutes=1))


@pytest.mark.parametrize("topology", ["colocated", pytest.param("landed", marks=pytest.mark.slow)])
def test_s2_new_sensitive_looking_source_column_stops_the_batch(
    sync_env: SyncEnv, landed_env_factory: Any, topology: str
) -> None:
    env = sync_env if topology == "colocated" else landed_env_factory()
    env.sim.add_source_column("Customers", "SSN", "nvarchar(11)")
    _edit_customer(env, {"SSN": "987-65-4321"})
    state = env.run()
    assert state.is_failed()
    message = (
        "Customers.SSN (new in queue.Customers) is not in the sensitive-column policy and its "
        "name looks sensitive (matches 'ssn'): add `SSN: drop` (or mask / hash / keep) under "
        "`Customers:` in exigo_sensitive_columns (dbt_project/dbt_project.yml); nothing was "
        "copied or merged (S2)"
    )
    assert message in str(state.message)
    [batch] = env.batches()
    assert batch["status"] == "failed" and message in batch["error"]
    assert not env.query(
        env.warehouse,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'exigo_history'",
    ), "something merged"
    assert "987-65-4321" not in repr(env.query(env.warehouse, "SELECT * FROM exigo_sync.batches"))


@pytest.mark.parametrize("topology", ["colocated", pytest.param("landed", marks=pytest.mark.slow)])
def test_s2_hostile_source_column_names_are_carried_as_names(
    sync_env: SyncEnv, landed_env_factory: Any, topology: str
) -> None:
    """Names built to be SQL (a quote that would end the identifier, a quote that would end a
    string) reach every statement quoted: the batch merges them as two ordinary columns, and
    nothing else ran (the ledger's tables are there with their rows)."""
    env = sync_env if topology == "colocated" else landed_env_factory()
    env.sim.add_source_column("Customers", HOSTILE, "int")
    env.sim.add_source_column("Customers", "a'b", "nvarchar(20)")
    _edit_customer(env, {HOSTILE: 7, "a'b": "it's"})
    env.run_ok()
    rows = env.query(
        env.warehouse,
        "SELECT x_drop_table_exigo_sync_batches, a_b FROM exigo_current.customers_current "
        "WHERE customer_id = 1",
    )
    assert rows == [(7, "it's")]
    [batch] = env.batches()
    assert batch["status"] == "merged"
    stats = env.query(env.warehouse, "SELECT COUNT(*) FROM exigo_sync.batch_entity_stats")
    assert stats[0][0] > 0
    env.run_ok()  # and again, incrementally
    assert [b["status"] for b in env.batches()] == ["merged", "merged"]


@pytest.fixture
def project_masking_birth_date(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the dbt project whose policy masks Customers.BirthDate (documented datetime:
    a value that does not cast fails B3)."""
    project = sync_env.root / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs")
    )
    config = yaml.safe_load((project / "dbt_project.yml").read_text())
    config["vars"]["exigo_sensitive_columns"]["Customers"]["BirthDate"] = "mask"
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setenv("EXIGO_SYNC_DBT_PROJECT_DIR", str(project))
    return project


def test_s2_uncastable_value_of_a_masked_column_is_named_nowhere(
    sync_env: SyncEnv, project_masking_birth_date: Path
) -> None:
    env = sync_env
    secret = "123-45-6789"
    with env.sim.connect(read_only=False) as con:
        con.execute('ALTER TABLE dbo."Customers" ALTER "BirthDate" TYPE VARCHAR')
    _edit_customer(env, {"BirthDate": f"SSN {secret}"})
    state = env.run()
    assert state.is_failed()
    expected = (
        "queue table queue.Customers, column BirthDate: a value cannot be cast to datetime "
        "(B3); the value is withheld because the column is masked (S2); nothing was merged"
    )
    assert expected in str(state.message)
    [batch] = env.batches()
    assert expected in batch["error"]

    dbt_files = [
        p for folder in ("dbt-logs", "dbt-target") for p in (env.root / folder).rglob("*")
        if p.is_file()
    ]  # fmt: skip
    assert any(p.name == "dbt.log" for p in dbt_files)
    for where, text in {
        "the ledger": repr(env.query(env.warehouse, "SELECT * FROM exigo_sync.batches")),
        "the run's log and artifacts": prefect_logs_and_artifacts(),
        "the run's error": str(state.message),
        **{str(p): p.read_bytes().decode("utf-8", "replace") for p in dbt_files},
    }.items():
        assert secret not in text, f"the masked value leaked into {where}"
