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
import yaml

from exigo_sync import processes
from exigo_sync.dbt_runner import preloaded_modules, warm_up
from exigo_sync.processes import ForkServer, stop_fork_server

REPO = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, greeting: str) -> tuple[Path, Path]:
    project, profiles = tmp_path / "project", tmp_path / "profiles"
    for folder in (project / "models", project / "macros", profiles):
        folder.mkdir(parents=True, exist_ok=True)
    config = {"name": "warm", "version": "1.0", "profile": "warm", "config-version": 2}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    (project / "macros" / "greeting.sql").write_text(
        f"{{% macro greeting() %}}'{greeting}'{{% endmacro %}}\n"
    )
    (project / "models" / "hello.sql").write_text("select {{ greeting() }} as greeting\n")
    output = {"type": "duckdb", "path": str(tmp_path / "wh.duckdb"), "threads": 1}
    profile = {"warm": {"target": "dev", "outputs": {"dev": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    return project, profiles


def _build(server: ForkServer, tmp_path: Path, project: Path, profiles: Path) -> str:
    child = server.fork(
        "exigo-sync-dbt", "exigo_sync.child.dbt",
        ["build", "--project-dir", str(project), "--profiles-dir", str(profiles),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
    )  # fmt: skip
    output = child.stdout.read().decode()
    assert child.wait(timeout=60) == 0, output[-3000:]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
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
