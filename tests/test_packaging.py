"""`pip install exigo-sync` with no checkout: the wheel ships the dbt project, the flow and the
example profile (setup.py copies them into the package), and the commands run from it in any
directory.

The wheel is built from a copy of the files the source distribution holds (MANIFEST.in), so the
build cannot reach into the checkout. The slow test installs it into a fresh virtual
environment whose only link to this machine's `.venv` is a .pth line adding that venv's
site-packages (the dependencies: installing them takes minutes). A .pth line adds a folder to
sys.path without reading the .pth files inside it, so the checkout's editable install
(`__editable__.exigo_sync-*.pth` -> src/) stays out: the test asserts that `exigo_sync` is
imported from the new environment, then runs every command with its working directory in a
temporary folder and PYTHONPATH unset."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from exigo_sync.settings import REPO_ROOT

# What the source distribution holds (MANIFEST.in, and what setuptools adds by itself).
SDIST = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE",
         "profiles.example.yml", "src", "dbt_project")  # fmt: skip
NOT_SHIPPED = ("target", "logs", "dbt_packages", "__pycache__", "*.egg-info", "_data")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("sdist") / "exigo-sync"
    tree.mkdir()
    for name in SDIST:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
        else:
            shutil.copyfile(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("exigo_sync-*.whl")
    return built


def test_the_wheel_ships_the_dbt_project_the_flow_and_the_example_profile(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "exigo_sync/_data/"
    assert "exigo_sync/flow.py" in names  # prefect.yaml's entrypoint: exigo_sync.flow:exigo_sync
    assert f"{data}profiles.example.yml" in names
    assert f"{data}dbt_project/dbt_project.yml" in names
    project = {n.removeprefix(f"{data}dbt_project/") for n in names if n.startswith(data)}
    tracked = {
        str(p.relative_to(REPO_ROOT / "dbt_project"))
        for p in (REPO_ROOT / "dbt_project").rglob("*")
        if p.is_file() and p.suffix in (".sql", ".yml", ".md")
        and p.relative_to(REPO_ROOT / "dbt_project").parts[0] not in ("target", "logs")
    }  # fmt: skip
    assert tracked <= project, sorted(tracked - project)[:10]
    assert any(n.startswith("macros/") for n in project)
    # What dbt writes into a project folder is never shipped.
    assert not any(n.startswith(("target/", "logs/")) for n in project)


def _fresh_venv(root: Path, wheel: Path) -> Path:
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
             "['purelib'])"], capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    # The dependencies: this checkout's venv's site-packages, as a plain folder on sys.path.
    (purelib / "deps-from-project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         str(wheel)], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv


@pytest.mark.slow
def test_an_installed_wheel_runs_every_command_from_any_directory(
    wheel: Path, tmp_path: Path
) -> None:
    venv = _fresh_venv(tmp_path, wheel)
    elsewhere, other = tmp_path / "elsewhere", tmp_path / "other"
    elsewhere.mkdir()
    other.mkdir()
    unset = ("EXIGO_SYNC_", "PREFECT_", "DBT_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    env |= {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}  # fmt: skip

    def cli(*args: str, cwd: Path = elsewhere, **extra: str) -> str:
        proc = subprocess.run(
            ["exigo-sync", *args], cwd=cwd, env=env | extra, capture_output=True, text=True,
            timeout=1200,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"exigo-sync {' '.join(args)}:\n{out[-4000:]}"
        return out

    where = subprocess.run(
        ["python", "-c", "import exigo_sync; print(exigo_sync.__file__)"], cwd=elsewhere,
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout's src/

    demo = cli("demo", "--customers", "200", "--cycles", "1", "--data-dir", "demo-data")
    assert "batch 2 merged" in demo
    profiles = elsewhere / "demo-data" / "profiles"
    assert (elsewhere / "demo-data" / "warehouse.duckdb").is_file()
    state = tmp_path / "state" / "exigo-sync"
    assert (state / "prefect").is_dir() and (state / "dbt-target").is_dir()

    # The demo's profile names its files itself: from any directory, with only its folder set.
    status = cli("status", cwd=other, EXIGO_SYNC_PROFILES_DIR=str(profiles))
    assert "merged" in status and str(elsewhere / "demo-data") in status
    check = cli("check", cwd=other, EXIGO_SYNC_PROFILES_DIR=str(profiles))
    assert f"dbt project and flow: {venv}" in check.replace("\n", " ")
    docs = cli("docs", cwd=other, EXIGO_SYNC_PROFILES_DIR=str(profiles))
    assert str(state / "dbt-target" / "docs" / "index.html") in docs.replace("\n", "")
    run = cli("run", cwd=other, EXIGO_SYNC_PROFILES_DIR=str(profiles))
    assert "batch 3 merged" in run
    # The installed project reads the same from run to run: nothing that makes the views or
    # merges the lookups changed, so this batch leaves both out (view_definitions,
    # lookup_contents).
    flat = " ".join(run.split())
    assert "the views are left as they are" in flat and "the lookups are left out" in flat, flat

    # serve: its UI address, then stopped.
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            ["exigo-sync", "serve"], cwd=other,
            env=env | {"EXIGO_SYNC_PROFILES_DIR": str(profiles)},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while "Prefect UI: http://127.0.0.1:" not in log.read_text():
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
    assert not (elsewhere / "data").exists() and not (other / "data").exists()
