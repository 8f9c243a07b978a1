"""T-SQL batches as dbt-sqlserver sends them, split into statements and checked with sqlglot.

dbt-sqlserver sends *batches*: several statements, often without `;` between them
(`USE [db]; EXEC('...') EXEC('...')`), control flow (`IF ... EXEC(...)`, `BEGIN ... END`,
`BEGIN TRY ... END CATCH`) and dynamic SQL whose text is a string literal (`EXEC('...')`).
sqlglot parses one statement at a time and mis-reads juxtaposed statements (it takes the second
`EXEC(...)` for an alias of the first), so a batch is first split here, on sqlglot's own tokens:

- `;` at parenthesis depth 0 ends a statement; so does the start of the next statement (a
  statement keyword at depth 0 that cannot continue the current one: `ALTER TABLE t DROP ...`,
  `UPDATE t SET ...`, `INSERT ... SELECT` and `CASE ... END` are not splits).
- `IF <condition> <statement>` keeps its condition (checked as `SELECT CASE WHEN <condition> ...`)
  and its one-statement body (or `BEGIN ... END` block).
- `EXEC('<literal>')` is unwrapped: the literal is split and checked as a batch of its own.

Every leaf statement must then parse with `sqlglot.parse_one(read="tsql")` without falling back to
`exp.Command` and with balanced parentheses. The only statements not handed to sqlglot, each for
a stated reason, are in `UNPARSED_BY_SQLGLOT`; a trailing `OPTION (...)` query-hint clause is
validated separately and removed before parsing (sqlglot 30 rejects `OPTION (LABEL = '...')`,
which dbt-sqlserver appends to most statements).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

DIALECT = sqlglot.Dialect.get_or_raise("tsql")  # sqlglot's name for SQL Server

# Statements handed to no parser, and why. Each is matched in full by its regex.
UNPARSED_BY_SQLGLOT: dict[str, re.Pattern[str]] = {
    # sqlglot 30 reads a bare THROW as a column reference; dbt-sqlserver rethrows in the CATCH
    # block of its CREATE SCHEMA guard (macro create_schema_if_not_exists).
    "THROW (rethrow in a CATCH block)": re.compile(r"THROW", re.IGNORECASE),
}

# Query hints dbt-sqlserver appends (macro get_query_options): LABEL plus the hints it allows.
_OPTION_ITEM = re.compile(
    r"LABEL\s*=\s*'(?:[^']|'')*'|[A-Z_]+(?:\s+[A-Z_]+)?(?:\s*=?\s*\d+(?:\.\d+)?)?",
    re.IGNORECASE,
)

_STARTERS = {
    "ALTER",
    "BEGIN",
    "COMMIT",
    "CREATE",
    "DECLARE",
    "DELETE",
    "DROP",
    "END",
    "EXEC",
    "EXECUTE",
    "IF",
    "INSERT",
    "MERGE",
    "ROLLBACK",
    "SELECT",
    "SET",
    "THROW",
    "TRUNCATE",
    "UPDATE",
    "USE",
}
# Keywords that continue (rather than end) a statement that began with the key.
_CONTINUES = {
    "ALTER": {"ALTER", "DROP", "ADD"},
    "UPDATE": {"SET"},
    "SELECT": {"SELECT"},
    "WITH": {"SELECT", "INSERT", "DELETE", "UPDATE"},
    "INSERT": {"SELECT"},
    "CREATE": {"SELECT", "ALTER"},  # CREATE OR ALTER VIEW ... AS SELECT
    "DELETE": {"SELECT"},
    "DROP": {"IF"},  # DROP VIEW IF EXISTS
}
_LITERALS = (TokenType.STRING, TokenType.NATIONAL_STRING)


class TsqlError(AssertionError):
    pass


@dataclass
class Leaf:
    """One statement: its text and tokens (relative to the batch it came from)."""

    text: str
    tokens: list[Token]
    semicolons: int = 0  # `;` tokens right after the statement (2+: an empty statement follows)

    @property
    def head(self) -> str:
        return _word(self.tokens[0])


@dataclass
class If:
    condition: Leaf
    body: Node


@dataclass
class Block:
    kind: str  # BEGIN | TRY | CATCH
    body: list[Node]


Node = Leaf | If | Block


def _word(tok: Token) -> str:
    if tok.token_type in _LITERALS or tok.token_type == TokenType.IDENTIFIER:
        return ""
    return tok.text.upper()


class _BatchTokenizer(DIALECT.tokenizer_class):
    # sqlglot reads everything after a statement-initial END up to the next `;` as one string
    # (END is a "command" token); in a batch END closes a BEGIN block, so keep it a keyword.
    COMMANDS = DIALECT.tokenizer_class.COMMANDS - {TokenType.END}


def tokenize(sql: str) -> list[Token]:
    return _BatchTokenizer(dialect=DIALECT).tokenize(sql)


def split_batch(sql: str) -> list[Node]:
    """The statements of one batch, in order."""
    tokens = tokenize(sql)
    nodes, i = [], 0
    while i < len(tokens):
        if tokens[i].token_type == TokenType.SEMICOLON:
            i += 1
            continue
        node, i = _statement(sql, tokens, i)
        nodes.append(node)
    return nodes


def _leaf(sql: str, tokens: list[Token], start: int, stop: int) -> Leaf:
    part = tokens[start:stop]
    return Leaf(sql[part[0].start : part[-1].end + 1], part)


def _statement(sql: str, tokens: list[Token], i: int) -> tuple[Node, int]:
    head = _word(tokens[i])
    nxt = _word(tokens[i + 1]) if i + 1 < len(tokens) else ""
    if head == "IF":
        j = _scan(tokens, i + 1, head)
        if j >= len(tokens):
            raise TsqlError(f"IF without a statement:\n{sql}")
        body, k = _statement(sql, tokens, j)
        return If(_leaf(sql, tokens, i + 1, j), body), k
    if head == "BEGIN" and nxt not in ("TRAN", "TRANSACTION"):
        kind = nxt if nxt in ("TRY", "CATCH") else "BEGIN"
        j = i + (2 if kind != "BEGIN" else 1)
        body = []
        while True:
            if j >= len(tokens):
                raise TsqlError(f"BEGIN without END:\n{sql}")
            if tokens[j].token_type == TokenType.SEMICOLON:
                j += 1
                continue
            if _word(tokens[j]) == "END":
                j += 1
                if kind != "BEGIN":
                    # sqlglot tokenizes the word after END as a string: compare its text.
                    if j >= len(tokens) or tokens[j].text.upper() != kind:
                        raise TsqlError(f"BEGIN {kind} closed by something else:\n{sql}")
                    j += 1
                return Block(kind, body), j
            node, j = _statement(sql, tokens, j)
            body.append(node)
    j = _scan(tokens, i + 1, head)
    leaf = _leaf(sql, tokens, i, j)
    while j < len(tokens) and _is_semicolon(tokens[j]):
        leaf.semicolons += 1
        j += 1
    return leaf, j


def _is_semicolon(tok: Token) -> bool:
    return tok.token_type == TokenType.SEMICOLON


def _scan(tokens: list[Token], j: int, head: str) -> int:
    """Index of the token that ends the statement begun with `head` (exclusive)."""
    depth = cases = 0
    while j < len(tokens):
        tok, word = tokens[j], _word(tokens[j])
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            if _is_semicolon(tok):
                return j
            if word == "CASE":
                cases += 1
            elif word == "END" and cases:
                cases -= 1
            elif word in _STARTERS and word not in _CONTINUES.get(head, ()):
                return j
        j += 1
    return j


# --- leaf checks --------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A leaf statement and what was made of it."""

    leaf: Leaf
    tree: exp.Expression | None  # None: listed in UNPARSED_BY_SQLGLOT
    in_exec: bool  # text of an EXEC('...') literal
    options: str | None = None  # the OPTION (...) clause removed before parsing
    condition_of_if: bool = False


@dataclass
class Report:
    parsed: list[Parsed] = field(default_factory=list)
    unparsed: dict[str, int] = field(default_factory=dict)  # UNPARSED_BY_SQLGLOT key -> count

    def views(self) -> Iterator[tuple[Parsed, exp.Create]]:
        for p in self.parsed:
            if isinstance(p.tree, exp.Create) and (p.tree.args.get("kind") or "").upper() == "VIEW":
                yield p, p.tree


def check_batch(sql: str, report: Report | None = None, in_exec: bool = False) -> Report:
    """Split, unwrap and parse every statement of a batch; raise TsqlError on the first failure."""
    report = report if report is not None else Report()
    try:
        nodes = split_batch(sql)
    except sqlglot.errors.TokenError as e:
        raise TsqlError(f"cannot tokenize: {e}\n{sql}") from e
    for node in nodes:
        _check_node(node, report, in_exec)
    return report


def _check_node(node: Node, report: Report, in_exec: bool) -> None:
    if isinstance(node, Block):
        for child in node.body:
            _check_node(child, report, in_exec)
    elif isinstance(node, If):
        cond = f"SELECT CASE WHEN {node.condition.text} THEN 1 END AS x"
        tree = parse_one(cond)
        report.parsed.append(Parsed(node.condition, tree, in_exec, condition_of_if=True))
        _check_node(node.body, report, in_exec)
    else:
        _check_leaf(node, report, in_exec)


def exec_literal(leaf: Leaf) -> str | None:
    """The SQL text of `EXEC('...')` (sqlglot's tokenizer already un-doubles the quotes)."""
    t = leaf.tokens
    if (
        leaf.head in ("EXEC", "EXECUTE")
        and len(t) == 4
        and t[1].token_type == TokenType.L_PAREN
        and t[2].token_type in _LITERALS
        and t[3].token_type == TokenType.R_PAREN
    ):
        return t[2].text
    return None


def _check_leaf(leaf: Leaf, report: Report, in_exec: bool) -> None:
    inner = exec_literal(leaf)
    if inner is not None:
        check_batch(inner, report, in_exec=True)
        return
    for name, pattern in UNPARSED_BY_SQLGLOT.items():
        if pattern.fullmatch(leaf.text.strip()):
            report.unparsed[name] = report.unparsed.get(name, 0) + 1
            report.parsed.append(Parsed(leaf, None, in_exec))
            return
    text, options = strip_options(leaf)
    tree = parse_one(text)
    report.parsed.append(Parsed(leaf, tree, in_exec, options))


def strip_options(leaf: Leaf) -> tuple[str, str | None]:
    """Remove a trailing depth-0 `OPTION (...)` clause after checking each hint in it."""
    toks = leaf.tokens
    for k in range(len(toks) - 1, 0, -1):
        if (
            _word(toks[k]) == "OPTION"
            and toks[k + 1 : k + 2]
            and toks[k + 1].token_type == (TokenType.L_PAREN)
        ):
            if toks[-1].token_type != TokenType.R_PAREN or _depth_at(toks, k) != 0:
                continue
            base = leaf.text[: toks[k].start - leaf.tokens[0].start]
            inside = leaf.text[toks[k + 1].end - toks[0].start + 1 : toks[-1].start - toks[0].start]
            items = _split_commas(inside)
            bad = [i for i in items if not _OPTION_ITEM.fullmatch(i.strip())]
            if bad:
                raise TsqlError(f"unknown query hint(s) {bad} in:\n{leaf.text}")
            return base.rstrip(), inside.strip()
    return leaf.text, None


def _depth_at(toks: list[Token], k: int) -> int:
    depth = 0
    for t in toks[:k]:
        depth += (t.token_type == TokenType.L_PAREN) - (t.token_type == TokenType.R_PAREN)
    return depth


def _split_commas(text: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def parse_one(sql: str) -> exp.Expression:
    """Parse one statement as T-SQL; no exp.Command fallback, balanced parentheses."""
    tokens = tokenize(sql)
    opened = sum(t.token_type == TokenType.L_PAREN for t in tokens)
    closed = sum(t.token_type == TokenType.R_PAREN for t in tokens)
    if opened != closed:
        raise TsqlError(f"unbalanced parentheses ({opened} '(' vs {closed} ')'):\n{sql}")
    try:
        tree = sqlglot.parse_one(sql, read="tsql")
    except sqlglot.errors.ParseError as e:
        raise TsqlError(f"sqlglot cannot parse: {e}\n{sql}") from e
    if tree is None or list(tree.find_all(exp.Command)) or isinstance(tree, exp.Command):
        raise TsqlError(f"not really parsed (exp.Command):\n{sql}")
    return tree


def parse_tsql(sql: str) -> exp.Expression:
    """Parse one statement exigo-sync's Python side sends (ledger, lock, landing, client, checks)
    as T-SQL: balanced parentheses, no exp.Command fallback (sqlglot's "kept as text"), checked
    by assertions; a sqlglot ParseError propagates. (`parse_one` does the same for statements
    split out of a dbt-sqlserver batch, raising TsqlError.)"""
    tokens = DIALECT.tokenize(sql)
    opened = sum(t.token_type == TokenType.L_PAREN for t in tokens)
    closed = sum(t.token_type == TokenType.R_PAREN for t in tokens)
    assert opened == closed, f"unbalanced parentheses ({opened} '(' vs {closed} ')'):\n{sql}"
    tree = sqlglot.parse_one(sql, read="tsql")
    # exp.Command is sqlglot's "could not understand, kept as text" fallback.
    assert not list(tree.find_all(exp.Command)), f"not really parsed:\n{sql}"
    return tree


# --- rules for model SQL ------------------------------------------------------------------------


def view_body_problems(create: exp.Create, leaf: Leaf) -> list[str]:
    """dbt-sqlserver runs model SQL as a view body: `CREATE OR ALTER VIEW v AS <sql>;`."""
    body = create.expression
    problems = []
    if body is None:
        return ["no view body"]
    for order in body.find_all(exp.Order):
        if isinstance(order.parent, exp.Window | exp.WithinGroup):
            continue
        select = order.parent
        if not (isinstance(select, exp.Select) and select.args.get("limit")):
            problems.append(f"ORDER BY without TOP: {order.sql('tsql')[:80]}")
    withs = list(body.find_all(exp.With))
    if any(w.parent is not body for w in withs):
        problems.append("nested WITH (CTEs cannot be nested in T-SQL)")
    if leaf.semicolons > 1:
        # dbt-sqlserver appends its own ';' to `CREATE OR ALTER VIEW v AS <sql>`
        problems.append("model SQL ends with ';' (breaks every wrapper: `select * from (<sql>)`)")
    return problems


def literal_problems(parsed: Parsed) -> list[str]:
    """Non-ASCII text must be N'...' outside EXEC('...'); inside an EXEC literal (which
    dbt-sqlserver sends without N) it is converted to the database code page, so it must not
    occur at all."""
    problems = []
    for tok in parsed.leaf.tokens:
        if tok.token_type not in (*_LITERALS, TokenType.IDENTIFIER, TokenType.VAR):
            continue
        if tok.text.isascii():
            continue
        if parsed.in_exec:
            problems.append(f"non-ASCII text inside EXEC('...'): {tok.text!r}")
        elif tok.token_type != TokenType.NATIONAL_STRING:
            problems.append(f"non-ASCII literal without N prefix: {tok.text!r}")
    return problems
