"""`exigo-sync serve` with no Prefect server configured: it starts a local one (with the
scheduler), its schedule starts a batch by itself (whose dbt process serve's fork server
forks), and when the whole serve process group is killed outright in the middle of that
batch's dbt, nothing is left running and the next `exigo-sync run` (same PREFECT_HOME) merges
what an uninterrupted batch would (R1)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.flow.cli_processes import (
    assert_all_gone,
    dbt_processes,
    descendants,
    finish_and_compare,
    parent_of,
    signal_run,
    start_cli,
)
from tests.flow.helpers import SyncEnv


def test_r1_serve_schedules_a_batch_and_a_sigkilled_serve_leaves_nothing_behind(
    chain: SyncEnv, r1_start: dict[str, Any], tmp_path: Path
) -> None:
    env, home = chain, tmp_path / "prefect-home"
    schedules = {
        "EXIGO_SYNC_SCHEDULE_CRON": "* * * * *",  # every minute: the next one starts a batch
        "EXIGO_SYNC_RECONCILE_CRON": "0 0 1 1 *",
    }
    serve, marker = start_cli(
        tmp_path, "serve", prefect_home=home, fault="before_current", extra_env=schedules,
        command="serve",
    )  # fmt: skip
    serve.wait_for(marker, timeout=240)  # the schedule started a batch; it paused inside dbt
    # The batch runs in a process of its own, yet its dbt process was forked by the fork
    # server serve started (dbt imported once for every batch it serves).
    (dbt,) = dbt_processes(descendants(serve.pid))
    server = parent_of(dbt)
    assert b"exigo_sync.child.fork_server" in Path(f"/proc/{server}/cmdline").read_bytes()
    assert parent_of(server) == serve.pid

    family = signal_run(serve, signal.SIGKILL, group=True) | descendants(serve.pid)
    assert_all_gone(family)
    assert env.batches()[-1]["status"] == "refreshed"  # (dbt held the warehouse file till now)

    batches = finish_and_compare(env, tmp_path, home, r1_start["expected"])
    assert [b["status"] for b in batches] == ["merged", "failed", "merged"]
    assert batches[1]["error"].startswith("abandoned")


@pytest.mark.slow  # in `make test-slow` (a served batch seen in Chromium)
def test_serves_ui_talks_to_its_own_api_and_lists_the_flow_runs_in_chromium(
    sync_env: SyncEnv, tmp_path: Path
) -> None:
    """`exigo-sync serve` (no PREFECT_API_URL: its own server, on a random port) prints its UI
    address; the UI's settings name that server's API (not Prefect's default :4200), and in
    headless Chromium its runs page lists the flow run of a batch that reported there."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    from tests.docs.browser import CHROMIUM_FLAGS, chromium

    executable = chromium()
    home = tmp_path / "prefect-home"
    never = "0 0 1 1 *"  # no scheduled run during the test
    schedules = {"EXIGO_SYNC_SCHEDULE_CRON": never, "EXIGO_SYNC_RECONCILE_CRON": never}
    serve, _ = start_cli(
        tmp_path, "serve", prefect_home=home, extra_env=schedules, command="serve", cwd=tmp_path
    )
    try:
        serve.wait_for_output("run one now: PREFECT_API_URL=", timeout=240)
        ui = re.search(r"Prefect UI: (http://127\.0\.0\.1:\d+)", serve.output()).group(1)
        assert f"PREFECT_API_URL={ui}/api prefect deployment run" in serve.output()
        assert httpx.get(f"{ui}/ui-settings", timeout=10).json()["api_url"] == f"{ui}/api"

        # A batch reporting to serve's server (as `exigo-sync run` does with PREFECT_API_URL).
        run = subprocess.run(
            [sys.executable, "-m", "exigo_sync.cli", "run"], cwd=tmp_path,
            env={**os.environ, "PREFECT_HOME": str(home), **schedules,
                 "PREFECT_API_URL": f"{ui}/api"}, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        runs = httpx.post(f"{ui}/api/flow_runs/filter", json={}, timeout=10).json()
        names = [r["name"] for r in runs if r["state_type"] == "COMPLETED"]
        assert names, runs

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(executable), headless=True, args=CHROMIUM_FLAGS
            )
            try:
                page = browser.new_page()
                page.goto(f"{ui}/runs")
                expect(page.get_by_text(names[0]).first).to_be_visible(timeout=60_000)
                assert "Can't connect to Server API" not in page.content()
            finally:
                browser.close()
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
