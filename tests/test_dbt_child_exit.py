"""A batch's dbt process forked by the run's fork server ends as quietly as one started on its
own: it ends with os._exit (no interpreter shutdown), so what dbt holds that only a finalizer
would release must be let go before (exigo_sync.child.dbt). Before, multiprocessing's resource
tracker printed "leaked semaphore objects" into every batch's log: dbt's adapter locks."""

from __future__ import annotations

from pathlib import Path

from exigo_sync.processes import ForkServer
from tests.tiny_dbt_project import forked_build, write_project


def test_a_forked_dbt_process_leaves_no_warning_about_what_it_held(
    dbt_fork_server: ForkServer, tmp_path: Path
) -> None:
    project, profiles = write_project(tmp_path, "quiet", {"one": "select 1 as one\n"})
    # The resource tracker writes its warning after the child is gone: forked_build reads to
    # the pipe's end, which comes when the tracker (holding the pipe too) has ended.
    output_text = forked_build(dbt_fork_server, tmp_path, project, profiles)
    assert "OK created" in output_text  # the model was built
    assert "leaked" not in output_text and "resource_tracker" not in output_text, output_text
