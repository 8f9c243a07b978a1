"""docs/rules.md explains every rule the project cites: each code used anywhere (the READMEs, docs,
the dbt project, the package's docstrings and messages, the flow, test names) has a section there,
and the user-facing documents link each code they use to that section. No dbt, no database."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "docs" / "rules.md"

# The rule families and their codes: W1, L2, H9, C1, R4, B5, S2, T1 ...
CODE = re.compile(r"\b([WLHCRBST])([1-9])\b")
# A range written with one letter, with a hyphen or an en dash: "H1-H9".
CODE_RANGE = re.compile(r"\b([WLHCRBST])([1-9])\s*[\u2013-]\s*\1([1-9])\b")
TEST_NAME = re.compile(r"def (test_(?:[a-z]\d{1,2}_)+)")
ANCHOR = re.compile(r'<a id="([a-z]\d{1,2})"></a>\s*\n###\s+([A-Z]\d{1,2})\b')
LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]+`")

# The documents a user reads: every code they use links to its section.
LINKED_DOCUMENTS = [
    "README.md",
    "docs/architecture.md",
    "dbt_project/README.md",
    "dbt_project/docs/overview.md",
]


def _codes(text: str) -> set[str]:
    found = {f"{letter}{number}" for letter, number in CODE.findall(text)}
    for letter, low, high in CODE_RANGE.findall(text):
        found |= {f"{letter}{n}" for n in range(int(low), int(high) + 1)}
    return found


def _files(*patterns: str) -> Iterable[Path]:
    for pattern in patterns:
        yield from sorted(REPO.glob(pattern))


def _cited() -> dict[str, set[str]]:
    """code -> the files citing it."""
    cited: dict[str, set[str]] = {}

    def add(codes: Iterable[str], where: Path) -> None:
        for code in codes:
            cited.setdefault(code, set()).add(str(where.relative_to(REPO)))

    for path in _files(
        "README.md", "docs/*.md", "dbt_project/README.md", "dbt_project/docs/*.md",
        "src/**/*.py", "flows/**/*.py", "dbt_project/macros/**/*.sql",
        "dbt_project/models/**/*.sql", "dbt_project/models/**/*.yml",
        "dbt_project/tests/**/*.sql",
    ):  # fmt: skip
        add(_codes(path.read_text(encoding="utf-8")), path)
    for path in _files("tests/**/*.py"):
        for name in TEST_NAME.findall(path.read_text(encoding="utf-8")):
            add((part.upper() for part in name.removeprefix("test_").split("_") if part), path)
    return cited


def _sections() -> dict[str, str]:
    """anchor -> the code its heading names."""
    return dict(ANCHOR.findall(RULES.read_text(encoding="utf-8")))


def test_every_cited_rule_code_has_a_section_in_docs_rules() -> None:
    sections = _sections()
    for anchor, code in sections.items():
        assert anchor == code.lower(), f"docs/rules.md: anchor {anchor!r} heads section {code}"
    cited = _cited()
    assert {"W1", "H9", "R2", "B5", "S2", "T1"} <= set(cited), sorted(cited)
    missing = {code: sorted(where) for code, where in cited.items() if code.lower() not in sections}
    assert not missing, f"rule codes cited without a section in docs/rules.md: {missing}"


def test_docs_rules_is_in_the_projects_own_words_and_points_at_proofs() -> None:
    text = RULES.read_text(encoding="utf-8")
    assert "CONTRACT.md" not in text
    # Every section says what it guarantees and names a test or the code proving it.
    for block in re.split(r'\n<a id="', text)[1:]:
        code = block.split('"', 1)[0].upper()
        assert "**Guarantees.**" in block, code
        assert "test" in block.lower(), f"{code}: no test named"


def _prose(text: str) -> str:
    """The text a reader sees as prose: fenced blocks and inline code blanked out."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return INLINE_CODE.sub("``", text)


@pytest.mark.parametrize("document", LINKED_DOCUMENTS)
def test_user_documents_link_every_rule_code_to_its_section(document: str) -> None:
    path = REPO / document
    text = _prose(path.read_text(encoding="utf-8"))
    sections = _sections()
    unlinked = text
    for match in LINK.finditer(text):
        label, target = match.groups()
        if "rules.md" not in target:
            continue
        file_part, _, anchor = target.partition("#")
        assert (path.parent / file_part).resolve() == RULES, f"{document}: {target} is not rules"
        assert not anchor or anchor in sections or anchor in _headings(), (
            f"{document}: {target} names no section of docs/rules.md"
        )
        if CODE.fullmatch(label):
            assert anchor == label.lower(), f"{document}: [{label}] links to #{anchor}"
            unlinked = unlinked.replace(match.group(0), "", 1)
    bare = sorted(_codes(unlinked))
    assert not bare, f"{document}: rule codes not linked to docs/rules.md: {bare}"
    assert "correctness contract" not in text, f"{document}: cites the contract, not docs/rules.md"
    assert "CONTRACT.md" not in text


def _headings() -> set[str]:
    """GitHub's anchors of the section headings (## Windows and the watermark -> #windows-...)."""
    out = set()
    for line in RULES.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            slug = re.sub(r"[^\w\- ]", "", line[3:].strip().lower()).replace(" ", "-")
            out.add(slug)
    return out
