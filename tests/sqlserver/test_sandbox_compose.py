"""The sandbox's compose file, sqlcmd wrapper and Makefile targets, short of Docker.

Proven here: compose.yaml is YAML with the one expected service (SQL Server 2022 image, EULA
accepted, every password required with no default, port bound to 127.0.0.1 only, a named data
volume, a sqlcmd healthcheck), the container gets every sqlcmd variable 04_logins.sql uses, the
wrapper never passes a password on a command line; each make target stops with one line when
`docker info` fails, and with a stand-in `docker` that succeeds, `make sqlserver-up` runs the SQL
files in order and `make sqlserver-down` removes the volume, without printing a password.

Only Docker proves: that compose accepts the file (interpolation, `up --wait`), that the image
has sqlcmd where the wrapper looks, that the healthcheck turns healthy, and that the scripts run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.sqlserver import generate_sql as gen

HERE = gen.HERE
REPO = gen.REPO_ROOT
COMPOSE = yaml.safe_load((HERE / "compose.yaml").read_text())
REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")
PASSWORDS = {
    "EXIGO_SYNC_SANDBOX_SA_PASSWORD": "Sa-Secret-111!",
    "EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD": "Src-Secret-222!",
    "EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD": "Wh-Secret-333!",
}
TARGETS = ("sqlserver-up", "sqlserver-load", "test-sqlserver", "sqlserver-down")


def service() -> dict:
    return COMPOSE["services"]["sqlserver"]


def test_compose_has_the_one_sqlserver_service():
    assert set(COMPOSE["services"]) == {"sqlserver"}
    svc = service()
    assert svc["image"] == "mcr.microsoft.com/mssql/server:2022-latest"
    assert svc["environment"]["ACCEPT_EULA"] == "Y"


def test_compose_passwords_are_required_and_have_no_default():
    env = service()["environment"]
    for name in ("MSSQL_SA_PASSWORD", "SQLCMDPASSWORD"):
        m = REQUIRED.match(env[name])
        assert m and m[1] == "EXIGO_SYNC_SANDBOX_SA_PASSWORD", name
    for name in (gen.SOURCE_PASSWORD_VAR, gen.WAREHOUSE_PASSWORD_VAR):
        m = REQUIRED.match(env[name])
        assert m and m[1] in PASSWORDS, name
    # Every ${...} naming a password is ${VAR:?message}: no default anywhere.
    text = (HERE / "compose.yaml").read_text()
    expressions = re.findall(r"\$\{(\w+)([^}]*)\}", text)
    passwords = [(v, rest) for v, rest in expressions if "PASSWORD" in v]
    assert {v for v, _ in passwords} == set(PASSWORDS)
    assert all(rest.startswith(":?") for _, rest in passwords), passwords


def test_compose_gives_the_container_every_sqlcmd_variable_of_the_scripts():
    scripts = "".join((gen.SQL_DIR / n).read_text() for n in gen.FILES)
    used = set(re.findall(r"\$\((\w+)\)", scripts))
    assert used == {
        gen.SOURCE_PASSWORD_VAR,
        gen.WAREHOUSE_PASSWORD_VAR,
        gen.WAREHOUSE_MAY_REFRESH_VAR,
    }
    assert used <= set(service()["environment"])


def test_compose_port_is_bound_to_localhost_only():
    ports = service()["ports"]
    assert len(ports) == 1
    assert ports == ["127.0.0.1:${EXIGO_SYNC_SANDBOX_PORT:-1433}:1433"]


def test_compose_named_volume_and_read_only_mounts():
    volumes = service()["volumes"]
    assert "mssql-data:/var/opt/mssql" in volumes
    assert set(COMPOSE["volumes"]) == {"mssql-data"}
    binds = [v for v in volumes if v.startswith("./")]
    for bind in binds:
        source, _, mode = bind.split(":")
        assert mode == "ro", bind
        assert (HERE / source).exists(), bind


def test_compose_healthcheck_runs_sqlcmd():
    hc = service()["healthcheck"]
    assert hc["test"][0] == "CMD-SHELL"
    assert "sqlcmd.sh -Q 'SELECT 1'" in hc["test"][1]
    assert hc["retries"] * int(hc["interval"].rstrip("s")) >= 120  # SQL Server starts slowly


def test_sqlcmd_wrapper_is_valid_sh_and_never_takes_a_password_argument():
    script = HERE / "sqlcmd.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert " -P" not in text  # the password comes from SQLCMDPASSWORD
    assert '-S localhost -U sa -C -b -I "$@"' in text


# --- the Makefile targets -----------------------------------------------------------------------


def _make(
    target: str, fake_docker: str, tmp_path: Path, env: dict[str, str] | None = None,
    *flags: str,
):  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\n{fake_docker}\n")
    docker.chmod(0o755)
    # Not the sandbox's variables, nor the flags of a make this test may run under (`make test`).
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXIGO_SYNC_SANDBOX_")
        and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    }
    base["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(
        ["make", "--no-print-directory", *flags, target],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", TARGETS)
def test_make_target_stops_with_one_line_without_docker(target, tmp_path):
    res = _make(target, "exit 1", tmp_path, PASSWORDS)
    assert res.returncode != 0
    lines = (res.stdout + res.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "Docker is not available ('docker info' failed)" in lines[0]


def test_make_sqlserver_up_runs_the_scripts_in_order_and_prints_no_password(tmp_path):
    log = tmp_path / "docker.log"
    res = _make("sqlserver-up", f'echo "$*" >> {log}', tmp_path, PASSWORDS)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    compose = "compose -f deploy/sqlserver/compose.yaml"
    assert calls[:3] == ["info", "compose version", f"{compose} up --detach --wait"]
    execs = [c for c in calls if " exec " in c]
    assert execs == [
        f"{compose} exec -T sqlserver sh /exigo-sync/sqlcmd.sh -i /exigo-sync/sql/{name}"
        for name in sorted(gen.FILES)
    ]
    for secret in PASSWORDS.values():
        assert secret not in res.stdout + res.stderr + log.read_text()


def test_make_sqlserver_up_names_a_missing_password(tmp_path):
    env = {k: v for k, v in PASSWORDS.items() if "SOURCE" not in k}
    res = _make("sqlserver-up", "exit 0", tmp_path, env)
    assert res.returncode != 0
    assert "error: set EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD" in res.stderr


def test_make_sqlserver_down_removes_the_volume_without_the_passwords_set(tmp_path):
    log = tmp_path / "docker.log"
    res = _make("sqlserver-down", f'echo "$*" >> {log}', tmp_path)
    assert res.returncode == 0, res.stderr
    assert log.read_text().splitlines()[-1] == (
        "compose -f deploy/sqlserver/compose.yaml down --volumes"
    )


def test_make_test_sqlserver_gives_each_live_test_the_login_it_needs(tmp_path):
    """The warehouse login for the connection, ledger and lock tests, sa (the admin login the
    tests that create databases use) alongside; every live folder; no password on the command
    line (the shell expands the variables)."""
    res = _make("test-sqlserver", "exit 0", tmp_path, PASSWORDS, "-n")
    assert res.returncode == 0, res.stderr
    recipe = res.stdout.replace("\\\n", " ")
    assert "EXIGO_SYNC_TEST_MSSQL_USER=exigo_sync_warehouse" in recipe
    assert "EXIGO_SYNC_TEST_MSSQL_DATABASE=ExigoWarehouse" in recipe
    assert "EXIGO_SYNC_TEST_MSSQL_ADMIN_USER=sa" in recipe
    assert 'EXIGO_SYNC_TEST_MSSQL_ADMIN_PASSWORD="$EXIGO_SYNC_SANDBOX_SA_PASSWORD"' in recipe
    assert "pytest -q -m sqlserver tests/sqlserver tests/warehouse tests/source" in recipe
    for secret in PASSWORDS.values():
        assert secret not in res.stdout + res.stderr
