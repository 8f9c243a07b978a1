"""The analysts' docs site: `exigo-sync docs` builds dbt's static catalogue of a real (tiny)
warehouse, publishes it where EXIGO_SYNC_DOCS_DIR says and serves it on localhost; headless
Chromium (Debian's, driven by Playwright) shows the history, current and mart models in the model
tree and, on a model page, the column descriptions written in the model YAML."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Locator, expect, sync_playwright

from exigo_sync.docs_site import DocsSite, build_docs_site, serving, site_dir
from exigo_sync.settings import Settings
from tests.dbt.helpers import PROJECT_DIR, DbtEnv, failures
from tests.dbt.scenario import T0
from tests.docs.browser import CHROMIUM_FLAGS, chromium

VIEWPORT = {"width": 1400, "height": 1000}
WAIT_MS = 30_000  # for any one step of the page (a loaded 2-core machine renders slowly)
PROJECT = "exigo_sync"
# One model of each layer an analyst reads: dbt folder -> model.
LAYER_MODELS = {"history": "customers_history", "current": "customers_current",
                "marts": "dim_customers"}  # fmt: skip
# Model pages opened in the browser: a generated YAML (history) and a hand-written one (marts).
PAGES = ("customers_history", "dim_customers")


def site_environ(env: DbtEnv, docs_dir: Path) -> dict[str, str]:
    """What an operator would set: the profile, the warehouse files, dbt's folders, the site."""
    return {
        **env.env,
        "EXIGO_SYNC_PROFILES_DIR": str(env.profiles_dir),
        "EXIGO_SYNC_DBT_TARGET_PATH": str(env.target_path),
        "EXIGO_SYNC_DBT_LOG_PATH": str(env.log_path),
        "EXIGO_SYNC_DOCS_DIR": str(docs_dir),
    }


UNSET = ("EXIGO_SYNC_TARGET", "EXIGO_SYNC_SOURCE_TARGET",
         "EXIGO_SYNC_TOPOLOGY", "DBT_PROFILES_DIR")  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(two_batch_template: Path, tmp_path_factory) -> DbtEnv:
    """A copy of the two-batch warehouse with the marts built too."""
    env = DbtEnv.copy_of(two_batch_template, tmp_path_factory.mktemp("docs_warehouse"))
    res = env.invoke("run", "--select", "tag:exigo_marts", batch_id=2,
                     refreshed_at=T0 + timedelta(hours=3))  # fmt: skip
    assert res.success, failures(res)
    return env


@pytest.fixture(scope="module")
def docs_site(warehouse: DbtEnv) -> Iterator[DocsSite]:
    """The site as `exigo-sync docs` builds it (dbt in a child process), configured from the
    environment like an operator's run."""
    with pytest.MonkeyPatch.context() as mp:
        for name in UNSET:
            mp.delenv(name, raising=False)
        for name, value in site_environ(warehouse, warehouse.tmp / "site").items():
            mp.setenv(name, value)
        yield build_docs_site(Settings())


def yaml_column_description(model: str) -> tuple[str, str]:
    """The first column of `model` whose YAML description is plain text (no doc() block)."""
    for path in sorted((PROJECT_DIR / "models").rglob("*.yml")):
        for node in yaml.safe_load(path.read_text()).get("models") or []:
            if node["name"] != model:
                continue
            for column in node.get("columns") or []:
                text = column.get("description") or ""
                if text and "{{" not in text:
                    return column["name"], text
    raise AssertionError(f"no model YAML documents a column of {model} in plain text")


def as_rendered(markdown: str) -> str:
    """The description as the page shows it: dbt docs renders the markdown (`code` loses its
    backticks), and the browser collapses whitespace."""
    return " ".join(markdown.replace("`", "").split())


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decoded image data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_site_is_one_self_contained_page_in_the_configured_folder(docs_site, warehouse):
    assert docs_site.index == (warehouse.tmp / "site" / "index.html").resolve()
    assert sorted(p.name for p in docs_site.directory.iterdir()) == ["index.html"]
    html = docs_site.index.read_text()
    # The manifest and the catalogue are inlined (no manifest.json / catalog.json to fetch) ...
    assert '"MANIFEST.JSON INLINE DATA"' not in html
    assert '"CATALOG.JSON INLINE DATA"' not in html
    for model in LAYER_MODELS.values():
        assert f'"model.{PROJECT}.{model}"' in html
    # ... and the catalogue is the warehouse's: the marts were built, so their types are there.
    assert '"exigo_marts"' in html


def test_default_docs_dir_is_under_the_dbt_target_path(tmp_path):
    s = Settings(dbt_target_path=tmp_path / "target", docs_dir=None)
    assert site_dir(s, s.dbt_invocation("duckdb")) == (tmp_path / "target" / "docs").resolve()
    s = Settings(dbt_target_path=tmp_path / "target", docs_dir=tmp_path / "elsewhere")
    assert site_dir(s, s.dbt_invocation("duckdb")) == (tmp_path / "elsewhere").resolve()


def open_folder(scope: Locator, name: str) -> Locator:
    """Open a folder of dbt docs' model tree (unless open) and return the list of its children."""
    named = re.compile(rf"^\s*{re.escape(name)}\s*$")
    folder = scope.locator("a.menu-tree").filter(has_text=named).first
    folder.wait_for(timeout=WAIT_MS)  # rendered (the app draws the tree after loading)
    children = folder.locator("xpath=following-sibling::ul[1]")
    if not children.is_visible():
        folder.click()
    expect(children).to_be_visible(timeout=WAIT_MS)
    return children


def test_chromium_shows_the_models_and_their_column_descriptions(docs_site, tmp_path):
    executable = chromium()
    expected = {model: yaml_column_description(model) for model in PAGES}
    shots: list[Path] = []
    with serving(docs_site.directory) as url, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        try:
            context.set_default_timeout(WAIT_MS)
            # Nothing leaves the machine: the site must work from the local server alone.
            context.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith(url) else route.abort()
                ),
            )
            page = context.new_page()
            page.goto(url)

            # The app has rendered once the project tree (left) lists the project folder.
            tree = page.locator("div.menu").filter(has=page.locator("strong", has_text="Projects"))
            project = open_folder(tree, PROJECT)
            models = open_folder(project, "models")
            for layer, model in LAYER_MODELS.items():
                link = open_folder(models, layer).locator(
                    f'a[data-nav-unique-id="model.{PROJECT}.{model}"]'
                )
                expect(link).to_be_visible(timeout=WAIT_MS)
                expect(link).to_have_attribute("title", model)

            for model, (column, description) in expected.items():
                tree.locator(f'a[data-nav-unique-id="model.{PROJECT}.{model}"]').first.click()
                page.wait_for_url(re.compile(rf"#!/model/model\.{PROJECT}\.{model}$"))
                row = page.locator("tr.column-row").filter(
                    has=page.locator("td").first.get_by_text(column, exact=True)
                )
                row.click()  # the row shows a truncated description; expanded, all of it
                detail = row.locator("xpath=following-sibling::tr[1]")
                expect(detail).to_be_visible(timeout=WAIT_MS)
                expect(detail).to_contain_text(as_rendered(description), timeout=WAIT_MS)
                shots.append(tmp_path / f"{model}.png")
                page.screenshot(path=shots[-1])
        finally:
            context.close()

    for shot in shots:
        width, height, distinct = png_facts(shot)
        assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"]), shot
        # A blank or single-colour page decodes to a handful of byte values; text has many.
        assert distinct > 64, f"{shot}: only {distinct} distinct byte values"
        assert shot.stat().st_size > 20_000, shot


def test_cli_docs_serve_prints_the_url_and_serves_the_site(warehouse, tmp_path):
    """`exigo-sync docs --serve --port 0`: builds, says where the site is and the URL it
    serves, serves it until Ctrl-C, then exits 0."""
    site = tmp_path / "cli-site"
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(site_environ(warehouse, site), COLUMNS="200")
    exe = Path(sys.executable).with_name("exigo-sync")
    proc = subprocess.Popen(
        [str(exe), "docs", "--serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("serving the docs at "):
                ready.set()
        ready.set()  # the process ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(120), f"no URL line in 120 s: {lines}"
        assert f"docs site written to {site.resolve() / 'index.html'}" in lines, lines
        served = [ln for ln in lines if ln.startswith("serving the docs at ")]
        assert served, f"exigo-sync docs --serve stopped: {lines}"
        match = re.fullmatch(r"serving the docs at (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)",
                             served[0])  # fmt: skip
        assert match and int(match[2]) > 0, served[0]
        with urllib.request.urlopen(match[1], timeout=10) as resp:
            assert resp.status == 200
            body = resp.read().decode()
        assert f'"model.{PROJECT}.customers_history"' in body
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
