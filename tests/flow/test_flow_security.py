"""S1: a known password in the profile appears in no log, artifact, ledger row or error."""

from __future__ import annotations

import pytest

from tests.flow.helpers import SyncEnv, prefect_logs_and_artifacts

PASSWORD = "S1-kn0wn-Pa55w0rd-7f3e9c"


def test_s1_password_never_leaks(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from prefect.blocks.system import Secret

    env = sync_env
    # The password reaches the profile both ways an operator can give it: an environment
    # variable (sqlserver target) and a Prefect Secret block (a second sqlserver target).
    for side in ("MSSQL", "SOURCE"):  # the warehouse's login and the sync database's
        monkeypatch.setenv(f"EXIGO_SYNC_{side}_USER", "exigo_reader")
        monkeypatch.setenv(f"EXIGO_SYNC_{side}_PASSWORD", PASSWORD)
    Secret(value=PASSWORD).save("exigo-mssql-password", overwrite=True)
    profile = env.profiles / "profiles.yml"
    text = profile.read_text()
    block_target = (
        text[text.index("    sqlserver:") : text.index("    # The Exigo sync database")]
        .replace("    sqlserver:", "    sqlserver_block:", 1)
        .replace(
            "\"{{ env_var('EXIGO_SYNC_MSSQL_PASSWORD') }}\"",
            '"{{ prefect.blocks.secret.exigo-mssql-password }}"',
        )
    )
    assert "prefect.blocks.secret" in block_target
    profile.write_text(text.rstrip("\n") + "\n" + block_target)

    errors: list[str] = []
    env.run_ok()  # a normal batch on the duckdb target
    for params in ({"target": "sqlserver"}, {"target": "sqlserver_block"}):
        state = env.run(**params)
        assert state.is_failed()
        errors.append(str(state.message))
    monkeypatch.setenv("EXIGO_SYNC_FAULT", "after_refresh")  # a failure the ledger records
    state = env.run()
    assert state.is_failed()
    errors.append(str(state.message))
    monkeypatch.delenv("EXIGO_SYNC_FAULT")

    # No SQL Server here: the run stops at the driver, saying which one is missing.
    assert "ODBC" in errors[0], errors[0]
    ledger_text = repr(env.query(env.warehouse, "SELECT * FROM exigo_sync.batches"))
    assert "injected fault" in ledger_text
    out, err = capfd.readouterr()
    for where, blob in {
        "errors": "\n".join(errors),
        "ledger": ledger_text,
        "prefect logs/artifacts": prefect_logs_and_artifacts(),
        "console": out + err,
    }.items():
        assert PASSWORD not in blob, f"password leaked into {where}"
