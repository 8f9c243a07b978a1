"""A batch's dbt process forked by the run's fork server ends as quietly as one started on its
own: it ends with os._exit (no interpreter shutdown), so what dbt holds that only a finalizer
would release must be let go before (exigo_sync.child.dbt). Before, multiprocessing's resource
tracker printed "leaked semaphore objects" into every batch's log: dbt's adapter locks."""

from __future__ import annotations

from pathlib import Path

import yaml

from exigo_sync.processes import ForkServer


def test_a_forked_dbt_process_leaves_no_warning_about_what_it_held(
    dbt_fork_server: ForkServer, tmp_path: Path
) -> None:
    project, profiles = tmp_path / "project", tmp_path / "profiles"
    (project / "models").mkdir(parents=True)
    config = {"name": "quiet", "version": "1.0", "profile": "quiet", "config-version": 2}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    (project / "models" / "one.sql").write_text("select 1 as one\n")
    profiles.mkdir()
    output = {"type": "duckdb", "path": str(tmp_path / "wh.duckdb"), "threads": 1}
    profile = {"quiet": {"target": "dev", "outputs": {"dev": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))

    child = dbt_fork_server.fork(
        "exigo-sync-dbt", "exigo_sync.child.dbt",
        ["build", "--project-dir", str(project), "--profiles-dir", str(profiles),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
    )  # fmt: skip
    # The resource tracker writes its warning after the child is gone: read to the pipe's end,
    # which comes when the tracker (holding the pipe too) has ended.
    output_text = child.stdout.read().decode()
    assert child.wait(timeout=60) == 0, output_text[-3000:]
    assert "OK created" in output_text  # the model was built
    assert "leaked" not in output_text and "resource_tracker" not in output_text, output_text
