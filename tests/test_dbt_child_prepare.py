"""The fork server compiles the Jinja templates of the project's macros before it forks a
batch's dbt process (exigo_sync.child.dbt.prepare_fork_server), from the last parse's manifest:
each batch's dbt used to spend about 1.4 s of CPU compiling the same ~220 templates again. A
macro edited since that parse must still run as edited: the cache is keyed by the macro's text.
The run names the manifest to its server (exigo_sync.dbt_runner.warm_up). How a server prepares,
and stops preparing when a request comes, is proven in tests/test_fork_server.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb

from exigo_sync import processes
from exigo_sync.dbt_runner import preloaded_modules, warm_up
from exigo_sync.processes import ForkServer, stop_fork_server
from tests.tiny_dbt_project import forked_build, write_project

REPO = Path(__file__).resolve().parents[1]


def _project(folder: Path, greeting: str) -> tuple[Path, Path]:
    return write_project(
        folder, "warm", {"hello": "select {{ greeting() }} as greeting\n"},
        {"greeting": f"{{% macro greeting() %}}'{greeting}'{{% endmacro %}}\n"},
    )  # fmt: skip


def _build(server: ForkServer, folder: Path, project: Path, profiles: Path) -> str:
    """What the built model holds."""
    forked_build(server, folder, project, profiles)
    with duckdb.connect(str(folder / "wh.duckdb"), read_only=True) as con:
        return con.execute("select greeting from hello").fetchall()[0][0]


def _compiled(server: ForkServer, manifest: Path) -> dict[str, int]:
    probe = server.fork("exigo-sync-test", "tests.fork_targets", ["templates", str(manifest)])
    seen = json.loads(probe.stdout.readline())
    assert probe.wait(timeout=30) == 0
    return seen


def test_a_batch_forked_after_a_parse_finds_every_macro_compiled_and_an_edited_one_runs_edited(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)  # where the probe, tests.fork_targets, is imported from
    project, profiles = _project(tmp_path, "hello")
    manifest = tmp_path / "target" / "partial_parse.msgpack"
    stop_fork_server()
    try:
        # As a run starts its fork server: told where dbt parses (the run's target path).
        warm_up("duckdb", target_path=tmp_path / "target")
        server = processes.fork_server(preloaded_modules("duckdb"))
        # A new machine: nothing parsed yet, so nothing compiled ahead.
        assert _build(server, tmp_path, project, profiles) == "hello"
        assert manifest.exists()
        # The server compiles while idle; each probe interrupts it, and it goes on after.
        deadline = time.monotonic() + 60
        while (seen := _compiled(server, manifest))["compiled"] < seen["macros"]:
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)
        assert seen["macros"] > 400  # dbt's and the adapter's macros, and the project's

        (project / "macros" / "greeting.sql").write_text(
            "{% macro greeting() %}'edited'{% endmacro %}\n"
        )
        assert _build(server, tmp_path, project, profiles) == "edited"
    finally:
        stop_fork_server()
