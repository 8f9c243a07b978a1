"""The SQL examples the documents show return rows on the demo's data.

Every ```sql block of README.md, dbt_project/README.md and the docs overview (the analysts'
catalogue), read from the documents' text so an example cannot drift from what is tested, runs
against a small warehouse made the way `make demo` makes its own: the simulator started at the
demo's clock, a cycle of its activity, and the full load merged as the flow merges a batch. A block
with dbt Jinja (`exigo_as_of`, `ref`) is compiled by dbt first, as `dbt show --inline` would. And
every instant the examples name lies inside the demo's data.
"""

from __future__ import annotations

import inspect
import re
from datetime import datetime, timedelta

import pytest

from exigo_sync.demo import CLOCK_START
from exigo_sync.simulator import SyncSimulator
from exigo_sync.window import FULL_LOAD_START
from tests.dbt.helpers import REPO, DbtEnv, failures

DOCUMENTS = ("README.md", "dbt_project/README.md", "dbt_project/docs/overview.md")
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)
INSTANT = re.compile(r"'(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?)'")


def _demo_defaults() -> tuple[int, float]:
    """`exigo-sync demo`'s own defaults: cycles of activity after the first batch, hours each."""
    from exigo_sync.cli import demo

    params = inspect.signature(demo).parameters
    return int(params["cycles"].default), float(params["hours"].default)


def sql_examples() -> list[tuple[str, str]]:
    """(document, SQL) for every ```sql block. The docs overview is a dbt docs block, which
    escapes the Jinja it shows (`{{ '{{' }}`): unescaped here, as the catalogue renders it."""
    out = []
    for document in DOCUMENTS:
        text = (REPO / document).read_text(encoding="utf-8")
        for block in SQL_BLOCK.findall(text):
            out.append((document, block.replace("{{ '{{' }}", "{{").replace("{{ '}}' }}", "}}")))
    return out


EXAMPLES = sql_examples()


def test_the_documents_show_sql_examples_and_their_instants_lie_in_the_demos_data() -> None:
    for document in ("README.md", "dbt_project/docs/overview.md"):
        assert sum(d == document for d, _ in EXAMPLES) >= 2, f"{document}: no SQL examples found"
    cycles, hours = _demo_defaults()
    first, last = CLOCK_START, CLOCK_START + timedelta(hours=cycles * hours)
    instants = [datetime.fromisoformat(i) for _, sql in EXAMPLES for i in INSTANT.findall(sql)]
    assert instants
    for instant in instants:
        assert first <= instant <= last, f"{instant} lies outside the demo's data {first}..{last}"


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DbtEnv:
    """The demo's source in small (its clock start, one cycle of activity) and the full load
    merged: what `make demo` leaves, in a minute."""
    root = tmp_path_factory.mktemp("demo_like")
    _, hours = _demo_defaults()
    sim = SyncSimulator.create(
        root / "exigo_source.duckdb", seed=42, customers=150, clock_start=CLOCK_START
    )
    sim.advance(timedelta(hours=hours))
    env = DbtEnv(root, source_path=sim.path)
    refreshed = sim.refresh(FULL_LOAD_START)
    # The batch's models (the data tests are proven elsewhere and cost half the build here).
    res = env.build(1, refreshed.refresh_started_at, "--exclude-resource-type", "test")
    assert res.success, failures(res)
    return env


def _runnable(env: DbtEnv, sql: str) -> str:
    if "{{" not in sql:
        return sql
    res = env.invoke("compile", "--no-populate-cache", "--inline", sql)
    assert res.success, failures(res)
    return res.result.results[0].node.compiled_code


@pytest.mark.parametrize(
    ("document", "sql"),
    EXAMPLES,
    ids=[f"{document}-{n}" for n, (document, _) in enumerate(EXAMPLES)],
)
def test_each_sql_example_returns_rows_on_the_demo_data(
    demo_warehouse: DbtEnv, document: str, sql: str
) -> None:
    rows = demo_warehouse.query(_runnable(demo_warehouse, sql).strip().rstrip(";"))
    assert rows, f"{document}: this example returns nothing on the demo's data:\n{sql}"
