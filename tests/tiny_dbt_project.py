"""A dbt project of a few files on a DuckDB file, and its `dbt build` in a process forked as a
batch's dbt is (exigo_sync.child.dbt): for the tests of that process itself."""

from __future__ import annotations

from pathlib import Path

import yaml

from exigo_sync.processes import ForkServer


def write_project(
    folder: Path, name: str, models: dict[str, str], macros: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """`folder`/project (models/<name>.sql, macros/<name>.sql) and `folder`/profiles, whose
    profile writes to `folder`/wh.duckdb. Returns (project dir, profiles dir)."""
    project, profiles = folder / "project", folder / "profiles"
    for sub, files in (("models", models), ("macros", macros or {})):
        (project / sub).mkdir(parents=True, exist_ok=True)
        for file, text in files.items():
            (project / sub / f"{file}.sql").write_text(text)
    config = {"name": name, "version": "1.0", "profile": name, "config-version": 2}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    profiles.mkdir(exist_ok=True)
    output = {"type": "duckdb", "path": str(folder / "wh.duckdb"), "threads": 1}
    profile = {name: {"target": "dev", "outputs": {"dev": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    return project, profiles


def forked_build(server: ForkServer, folder: Path, project: Path, profiles: Path) -> str:
    """`dbt build` of the project in a process `server` forks; asserts it succeeded and returns
    everything it printed (read to the pipe's end: what is printed after it ends included)."""
    child = server.fork(
        "exigo-sync-dbt", "exigo_sync.child.dbt",
        ["build", "--project-dir", str(project), "--profiles-dir", str(profiles),
         "--target-path", str(folder / "target"), "--log-path", str(folder / "logs")],
    )  # fmt: skip
    output = child.stdout.read().decode()
    assert child.wait(timeout=60) == 0, output[-3000:]
    return output
