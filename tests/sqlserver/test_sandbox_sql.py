"""The SQL Server sandbox's T-SQL (deploy/sqlserver/sql/*.sql), short of a live server.

Proven here: the committed files are the generator's output; every statement parses as T-SQL
with sqlglot (read="tsql"), and the statements sqlglot has no grammar for are listed below with
the reason and checked piece by piece instead; the sync database creates every table and column
of the catalogue with its type, nullability and key, and the documented lookup values;
queue.Refresh has the parameter, the state logic and the copy order of the vendor semantics, and
its body, translated statement by statement to DuckDB, fills the queue tables exactly as the
simulator's queue.Refresh does over a sequence of calls; the logins get exactly the documented
permissions.

Only a live SQL Server proves: that SQL Server accepts every statement (sqlglot is a lenient
parser, not the server's), that EXECUTE AS OWNER really lets a login holding only EXECUTE replace
the queue tables, locking between concurrent callers, the DDL trigger's event-data path, and
that dbt and the ledger work with these rights (tests/sqlserver/test_sandbox_live.py, run with
`make test-sqlserver`).
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from deploy.sqlserver import generate_sql as gen
from exigo_sync.catalog import LOOKUP_TABLES, QUEUE_TABLES, REPLICATED_TABLES
from exigo_sync.simulator.core import SyncSimulator
from exigo_sync.simulator.rates import ActivityRates
from tests.sqlserver.tsql import parse_tsql

SQL_DIR = gen.SQL_DIR
# sqlglot logs a warning for every statement it keeps as text; the exceptions below cover them.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
# Values substituted for the sqlcmd scripting variables before parsing (sqlcmd does the same
# textual substitution before the server sees the batch).
SQLCMD_VARS = {
    gen.SOURCE_PASSWORD_VAR: "Sample-Source-Pw1",
    gen.WAREHOUSE_PASSWORD_VAR: "Sample-Warehouse-Pw1",
    gen.WAREHOUSE_MAY_REFRESH_VAR: "yes",
}
SQLCMD_VAR = re.compile(r"\$\((\w+)\)")
IDENT = r"\[(\w+)\]"


# --- reading the files: batches (GO) and statements ---------------------------------------------


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def substitute(text: str, values: dict[str, str] = SQLCMD_VARS) -> str:
    return SQLCMD_VAR.sub(lambda m: values[m.group(1)], text)


def batches(text: str) -> list[str]:
    """sqlcmd's batches: the text between lines holding only GO."""
    parts = re.split(r"(?im)^[ \t]*GO[ \t]*$", text)
    return [p for p in parts if sqlglot.Dialect.get_or_raise("tsql").tokenize(p)]


def statements(batch: str) -> list[str]:
    """The statements of a batch, split at top-level semicolons (BEGIN/CASE ... END nest). A
    CREATE PROCEDURE / TRIGGER is the whole batch, as T-SQL requires."""
    tokens = sqlglot.Dialect.get_or_raise("tsql").tokenize(batch)
    words = [t.text.upper() for t in tokens[:5]]
    if words[:1] == ["CREATE"] and {"PROCEDURE", "TRIGGER"} & set(words):
        return [batch[tokens[0].start : tokens[-1].end + 1].strip()]
    out, depth, first = [], 0, None
    for tok in tokens:
        if first is None:
            first = tok
        if tok.token_type in (TokenType.BEGIN, TokenType.CASE):
            depth += 1
        elif tok.token_type == TokenType.END:
            depth -= 1
        elif tok.token_type == TokenType.SEMICOLON and depth == 0:
            out.append(batch[first.start : tok.start].strip())
            first = None
    if first is not None:
        out.append(batch[first.start :].strip())
    return [s for s in out if s]


DYNAMIC_SQL = re.compile(r"EXEC sp_executesql N'((?:[^']|'')*)'")


def all_statements(name: str, values: dict[str, str] = SQLCMD_VARS) -> list[str]:
    """Every statement of a file, followed by the dynamic SQL (sp_executesql) it runs, which is
    checked like any other statement."""
    out = []
    for b in batches(substitute(read_sql(name), values)):
        for sql in statements(b):
            out.append(sql)
            out.extend(m.replace("''", "'") for m in DYNAMIC_SQL.findall(sql))
    return out


def parses(sql: str) -> bool:
    try:
        parse_tsql(sql)
    except (ParseError, AssertionError):
        return False
    return True


# --- the statements sqlglot cannot parse, and how each is checked instead ------------------------

# GRANT / REVOKE as exigo-sync writes them: permissions, an optional class-qualified securable.
GRANT = re.compile(
    rf"(?P<verb>GRANT|REVOKE) (?P<perms>[A-Z]+(?: [A-Z]+)?(?:, [A-Z]+(?: [A-Z]+)?)*)"
    rf"(?: ON (?P<cls>OBJECT|SCHEMA)::(?P<sec>{IDENT}(?:\.{IDENT})?))?"
    rf" (?:TO|FROM) {IDENT}"
)
KNOWN_PERMISSIONS = {"SELECT", "EXECUTE", "CREATE TABLE", "CREATE VIEW", "CREATE SCHEMA"}


def check_grant(sql: str) -> None:
    m = GRANT.fullmatch(sql)
    assert m, f"not a GRANT/REVOKE of the expected form: {sql}"
    perms = {p.strip() for p in m["perms"].split(",")}
    assert perms <= KNOWN_PERMISSIONS, sql
    # A database permission has no securable; an object/schema one always has.
    assert (m["cls"] is None) == all(p.startswith("CREATE ") for p in perms), sql


def _check_guarded(pattern: str, inner: Callable[[re.Match[str]], None]) -> Callable[[str], None]:
    def check(sql: str) -> None:
        m = re.fullmatch(pattern, sql, flags=re.DOTALL)
        assert m, f"does not match its exception's form: {sql}"
        # The IF condition is a plain expression: parse it on its own.
        assert isinstance(parse_tsql(f"SELECT {m['cond']} AS x"), exp.Select), sql
        inner(m)

    return check


def check_create_schema_owned(sql: str) -> None:
    m = re.fullmatch(rf"(?P<create>CREATE SCHEMA {IDENT}) AUTHORIZATION {IDENT}", sql)
    assert m, sql
    assert isinstance(parse_tsql(m["create"]), exp.Create)


def check_create_login(sql: str) -> None:
    def inner(m: re.Match[str]) -> None:
        assert m["login"] == m["login2"], sql

    _check_guarded(
        r"IF (?P<cond>SUSER_ID\(N'(?P<login>\w+)'\) IS NULL)\s+BEGIN\s+"
        r"CREATE LOGIN \[(?P<login2>\w+)\] WITH PASSWORD = N'[^']+', DEFAULT_DATABASE = \w+, "
        r"CHECK_POLICY = ON, CHECK_EXPIRATION = OFF;\s+END",
        inner,
    )(sql)


def check_alter_login(sql: str) -> None:
    def inner(m: re.Match[str]) -> None:
        assert m["login"] == m["login2"] and m["pw"] == m["pw2"], sql

    _check_guarded(
        r"IF (?P<cond>NOT EXISTS \(SELECT 1 FROM sys\.sql_logins\s+WHERE name = "
        r"N'(?P<login>\w+)' AND PWDCOMPARE\(N'(?P<pw>[^']+)', password_hash\) = 1\))\s+BEGIN\s+"
        r"ALTER LOGIN \[(?P<login2>\w+)\] WITH PASSWORD = N'(?P<pw2>[^']+)';\s+END",
        inner,
    )(sql)


def check_create_user(sql: str) -> None:
    def inner(m: re.Match[str]) -> None:
        assert m["user"] == m["login"] == m["user2"], sql

    _check_guarded(
        rf"IF (?P<cond>USER_ID\(N'(?P<user>\w+)'\) IS NULL)\s+BEGIN\s+"
        r"CREATE USER \[(?P<user2>\w+)\] FOR LOGIN \[(?P<login>\w+)\] "
        rf"WITH DEFAULT_SCHEMA = {IDENT};\s+END",
        inner,
    )(sql)


def check_conditional_grant(sql: str) -> None:
    _check_guarded(
        r"IF (?P<cond>N'\w*' (?:=|<>) N'\w*')\s+BEGIN\s+(?P<grant>(?:GRANT|REVOKE) [^;]+);\s+END",
        lambda m: check_grant(m["grant"]),
    )(sql)


def check_ddl_trigger(sql: str) -> None:
    m = re.fullmatch(
        rf"CREATE OR ALTER TRIGGER {IDENT} ON DATABASE\s+FOR CREATE_SCHEMA\s+AS\s+"
        r"BEGIN\s+(?P<body>.*)\s+END;?",
        sql,
        flags=re.DOTALL,
    )
    assert m, sql
    body = statements(m["body"])
    assert len(body) == 3, body
    for stmt in body:
        parse_tsql(stmt)


@dataclass(frozen=True)
class Exception_:
    """A statement form sqlglot (30.x) cannot parse, why, and how it is checked instead."""

    name: str
    starts: str  # a regex its text starts with
    reason: str
    check: Callable[[str], None]


SQLGLOT_EXCEPTIONS = (
    Exception_(
        "create schema with owner",
        r"CREATE SCHEMA \[\w+\] AUTHORIZATION",
        "dynamic SQL run by sp_executesql: sqlglot has no grammar for CREATE SCHEMA ... "
        "AUTHORIZATION; the statement without its owner is parsed, the owner matched exactly",
        check_create_schema_owned,
    ),
    Exception_(
        "create login",
        r"IF SUSER_ID",
        "sqlglot has no grammar for CREATE LOGIN; the guard is parsed, the rest matched exactly",
        check_create_login,
    ),
    Exception_(
        "alter login",
        r"IF NOT EXISTS \(SELECT 1 FROM sys\.sql_logins",
        "sqlglot has no grammar for ALTER LOGIN; the guard (PWDCOMPARE) is parsed, the rest "
        "matched exactly",
        check_alter_login,
    ),
    Exception_(
        "create user",
        r"IF USER_ID",
        "sqlglot has no grammar for CREATE USER ... FOR LOGIN; the guard is parsed, the rest "
        "matched exactly",
        check_create_user,
    ),
    Exception_(
        "grant / revoke",
        r"(GRANT|REVOKE) ",
        "sqlglot parses only a plain GRANT ... ON table; T-SQL's class-qualified securables "
        "(SCHEMA::, OBJECT::) and database permissions (CREATE TABLE) fall back to text; they "
        "are parsed by the GRANT grammar of this test",
        check_grant,
    ),
    Exception_(
        "conditional grant",
        r"IF N'",
        "an IF around a GRANT/REVOKE (sqlcmd variable WarehouseMayRefresh): the condition is "
        "parsed, the GRANT by this test's grammar",
        check_conditional_grant,
    ),
    Exception_(
        "database DDL trigger",
        r"CREATE OR ALTER TRIGGER \[\w+\] ON DATABASE",
        "sqlglot has no grammar for CREATE TRIGGER ... ON DATABASE FOR <event>; the body's "
        "statements are split and parsed one by one",
        check_ddl_trigger,
    ),
)


def classify(sql: str) -> str | None:
    """None when sqlglot parses the statement; else the name of the exception it falls under,
    after that exception's own check passed."""
    if parses(sql):
        return None
    matching = [e for e in SQLGLOT_EXCEPTIONS if re.match(e.starts, sql)]
    assert len(matching) == 1, (
        f"sqlglot cannot parse this and no listed exception covers it:\n{sql}"
    )
    matching[0].check(sql)
    return matching[0].name


# --- 1. the files are the generator's output ----------------------------------------------------


def test_committed_sql_files_equal_the_generator_output():
    assert sorted(p.name for p in SQL_DIR.glob("*.sql")) == sorted(gen.FILES)
    assert gen.stale_files() == [], "run: .venv/bin/python deploy/sqlserver/generate_sql.py"


def test_generator_check_mode_reports_a_stale_file(tmp_path):
    gen.write_all(tmp_path)
    assert gen.stale_files(tmp_path) == []
    (tmp_path / "02_queue_refresh.sql").write_text("-- edited by hand\n")
    assert gen.stale_files(tmp_path) == ["02_queue_refresh.sql"]


# --- 2. every statement parses ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(gen.FILES))
def test_every_statement_parses_as_tsql_or_is_a_listed_exception(name):
    stmts = all_statements(name)
    assert stmts
    for sql in stmts:
        classify(sql)


def test_every_listed_exception_is_needed():
    """The exception list stays honest: each entry is used, and nothing it covers parses."""
    used = {classify(s) for name in gen.FILES for s in all_statements(name)}
    assert used - {None} == {e.name for e in SQLGLOT_EXCEPTIONS}


def test_no_line_is_a_sqlcmd_command_by_accident():
    """sqlcmd reads `:cmd`, `!!`, and (osql style) exit / quit / reset / ed at the start of a
    line as its own commands; only GO separates batches."""
    for name in gen.FILES:
        for line in read_sql(name).splitlines():
            assert not re.match(r"\s*(:|!!|(exit|quit|reset|ed)\b)", line, re.IGNORECASE), line


def test_sqlcmd_variables_are_only_the_documented_ones_and_only_in_passwords_and_the_switch():
    text = "".join(read_sql(n) for n in gen.FILES)
    assert set(SQLCMD_VAR.findall(text)) == set(SQLCMD_VARS)
    for line in text.splitlines():
        if "$(" in line and not line.lstrip().startswith("--"):
            assert re.search(
                r"(PASSWORD = |PWDCOMPARE\()N'\$\(\w+Password\)'|IF N'\$\(WarehouseMayRefresh\)'",
                line,
            ), line
    # No password literal anywhere: every PASSWORD = is a scripting variable.
    assert not re.search(r"PASSWORD\s*=\s*N?'(?!\$\()", text)


# --- 3. the sync database: every table, column, type, nullability and key ----------------------


def created_tables(name: str) -> dict[str, exp.Create]:
    out = {}
    for sql in all_statements(name):
        if classify(sql) is not None:
            continue
        for create in parse_tsql(sql).find_all(exp.Create):
            if create.kind == "TABLE":
                table = create.this.this
                out[f"{table.db}.{table.name}"] = create
    return out


def column_defs(create: exp.Create) -> list[tuple[str, str, bool]]:
    return [
        (
            cd.name,
            cd.args["kind"].sql("tsql"),
            any(
                isinstance(c.kind, exp.NotNullColumnConstraint)
                and not c.kind.args.get("allow_null")
                for c in cd.constraints
            ),
        )
        for cd in create.find_all(exp.ColumnDef)
    ]


def primary_key(create: exp.Create) -> tuple[str, ...]:
    """The columns of the table's one PRIMARY KEY [CLUSTERED] (...) constraint."""
    (pk,) = [
        c
        for c in create.find_all(exp.Constraint)
        if any(isinstance(e, exp.PrimaryKeyColumnConstraint) for e in c.expressions)
    ]
    (clustered,) = [e for e in pk.expressions if isinstance(e, exp.ClusteredColumnConstraint)]
    return tuple(o.this.name for o in clustered.this)


def tsql_type(sql_type: str) -> str:
    return exp.DataType.build(sql_type, dialect="tsql").sql("tsql")


def test_sync_database_creates_every_catalogue_table_column_type_nullability_and_key():
    tables = created_tables("01_sync_database.sql")
    for table in REPLICATED_TABLES.values():
        create = tables.pop(f"dbo.{table.name}")
        expected = [(c.name, tsql_type(c.sql_type), not c.nullable) for c in table.columns]
        assert column_defs(create) == expected, table.name
        assert primary_key(create) == table.key, table.name
    for lookup in LOOKUP_TABLES.values():
        create = tables.pop(f"dbo.{lookup.name}")
        expected = [(c.name, tsql_type(c.sql_type), True) for c in lookup.columns]
        assert column_defs(create) == expected
        assert primary_key(create) == (lookup.id_column,)
    assert set(tables) == {f"{gen.SANDBOX_SCHEMA}.LoadState"}  # nothing else


def test_sync_database_types_are_the_catalogue_text_verbatim():
    text = read_sql("01_sync_database.sql")
    for table in REPLICATED_TABLES.values():
        for c in table.columns:
            line = f"[{c.name}] {c.sql_type} {'NULL' if c.nullable else 'NOT NULL'},"
            assert line in text, line


def test_sync_database_fills_the_lookups_with_the_documented_values():
    stmts = [parse_tsql(s) for s in all_statements("01_sync_database.sql") if parses(s)]
    inserts = {i.this.this.name: i for s in stmts for i in s.find_all(exp.Insert)}
    for lookup in LOOKUP_TABLES.values():
        values = inserts[lookup.name].find(exp.Values)
        rows = {(int(t.expressions[0].this), t.expressions[1].this) for t in values.expressions}
        assert rows == set(lookup.values), lookup.name
        # Idempotent: only values not there yet.
        assert inserts[lookup.name].find(exp.Exists) is not None


def test_databases_and_schemas():
    text01, text03 = read_sql("01_sync_database.sql"), read_sql("03_warehouse_database.sql")
    assert "CREATE DATABASE [ExigoSync]" in text01
    assert "CREATE DATABASE [ExigoWarehouse]" in text03
    assert "N'CREATE SCHEMA [queue]'" in text01  # dbo exists in every database


# --- 4. queue.Refresh: parameter, state logic, copies -------------------------------------------


def procedure() -> exp.Create:
    (proc,) = [
        parse_tsql(s) for s in all_statements("02_queue_refresh.sql") if "PROCEDURE" in s[:40]
    ]
    return proc


def var(node: exp.Expression) -> str | None:
    return node.this.name if isinstance(node, exp.Parameter) else None


def test_queue_refresh_signature_and_rights():
    proc = procedure()
    assert proc.kind == "PROCEDURE"
    sp = proc.this
    assert (sp.this.db, sp.this.name) == ("queue", "Refresh")
    (param,) = sp.expressions
    assert var(param.this) == "StartDate"
    assert param.args["kind"].this == exp.DataType.Type.DATETIME
    assert isinstance(param.args["default"], exp.Null)
    (execute_as,) = list(proc.find_all(exp.ExecuteAsProperty))
    assert execute_as.this.name.upper() == "OWNER"


def body() -> list[exp.Expression]:
    return [e for e in procedure().expression.expressions if not isinstance(e, exp.EndStatement)]


def test_queue_refresh_state_logic():
    stmts = body()
    kinds = [type(s).__name__ for s in stmts]
    # SET NOCOUNT ON, XACT_ABORT ON first; one transaction around everything else.
    assert [s.sql("tsql") for s in stmts[:2]] == ["SET NOCOUNT ON", "SET XACT_ABORT ON"]
    begin, commit = kinds.index("Transaction"), len(stmts) - 1
    assert kinds[commit] == "Commit"

    declared = {
        var(item.this[0]): item
        for d in stmts
        if isinstance(d, exp.Declare)
        for item in d.expressions
    }
    assert set(declared) == {"Now", "Last", "Effective"}
    assert isinstance(declared["Now"].args["default"], exp.CurrentTimestamp)  # GETDATE()

    # Inside the transaction: read the shared state with an update lock held to the end ...
    read = stmts[begin + 1]
    assert isinstance(read, exp.Select)
    (assign,) = read.expressions
    assert var(assign.this) == "Last" and assign.expression.name == "LastRefresh"
    assert read.find(exp.Table).name == "RefreshState"
    (hint,) = read.find(exp.Table).args["hints"]
    assert {h.name.upper() for h in hint.expressions} == {"UPDLOCK", "HOLDLOCK"}

    # ... then: explicit start, else the previous call, else now - 24 h.
    (effective,) = [s for s in stmts if isinstance(s, exp.Set) and "@Effective" in s.sql("tsql")]
    eq = effective.expressions[0].this
    assert var(eq.this) == "Effective"
    coalesce = eq.expression
    assert isinstance(coalesce, exp.Coalesce)
    first, second, third = coalesce.this, *coalesce.expressions
    assert (var(first), var(second)) == ("StartDate", "Last")
    assert isinstance(third, exp.DateAdd) and var(third.this) == "Now"
    assert third.text("unit").upper() == "HOUR" and third.expression.sql() == "-24"

    # Last: record this call's time (with or without a start) for the next call to resume from.
    update = stmts[commit - 1]
    assert isinstance(update, exp.Update) and update.this.name == "RefreshState"
    (set_last,) = update.expressions
    assert set_last.this.name == "LastRefresh" and var(set_last.expression) == "Now"


def test_queue_refresh_replaces_the_six_queue_tables_in_order():
    stmts = body()
    drops = [s for s in stmts if isinstance(s, exp.Drop)]
    intos = [s for s in stmts if isinstance(s, exp.Select) and s.args.get("into")]
    dropped = [(t.db, t.name) for d in drops for t in d.args["tables"]]
    assert dropped == [("queue", t) for t in QUEUE_TABLES]
    assert all(d.args.get("exists") for d in drops)  # DROP TABLE IF EXISTS
    assert [(i.args["into"].this.db, i.args["into"].this.name) for i in intos] == [
        ("queue", t) for t in QUEUE_TABLES
    ]
    for name, drop, into in zip(QUEUE_TABLES, drops, intos, strict=True):
        # drop immediately before its SELECT INTO
        assert stmts.index(into) == stmts.index(drop) + 1
        # every column of dbo as it is now (SELECT *), from dbo.<same table>
        assert isinstance(into.expressions[0], exp.Star) or into.expressions[0].is_star
        source = into.args["from_"].this
        assert (source.db, source.name) == ("dbo", name)
        table = REPLICATED_TABLES[name]
        where = into.args["where"].this
        if table.version_time_column:
            assert isinstance(where, exp.GTE)
            assert where.this.name == table.version_time_column
            assert var(where.expression) == "Effective"
        else:
            # every current line of each order in queue.Orders
            parent, keys = gen.PARENT_IN_QUEUE[name]
            assert isinstance(where, exp.Exists)
            inner = where.this
            assert (inner.find(exp.Table).db, inner.find(exp.Table).name) == ("queue", parent)
            assert {c.name for c in inner.args["where"].find_all(exp.Column)} == set(keys)


# The procedure body, run statement by statement in DuckDB against a simulator file: variables
# and GETDATE() become literals, every other statement is sqlglot's DuckDB translation.


class ProcedureInDuckDb:
    def __init__(self, path: Path):
        self.path = path

    def call(self, start: datetime | None) -> None:
        con = duckdb.connect(str(self.path))
        try:
            now = con.execute("SELECT Now FROM sim.Clock").fetchone()[0]
            env: dict[str, Any] = {"StartDate": start}
            for stmt in body():
                self._run(con, stmt.copy(), env, now)
        finally:
            con.close()

    @staticmethod
    def _literal(value: Any) -> exp.Expression:
        if value is None:
            return exp.Null()
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")

    def _bind(self, node: exp.Expression, env: dict[str, Any], now: datetime) -> exp.Expression:
        def swap(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Parameter):
                return self._literal(env[var(n)])
            if isinstance(n, exp.CurrentTimestamp):
                return self._literal(now)
            return n

        return node.transform(swap)

    def _eval(self, con, node: exp.Expression, env, now) -> Any:
        sql = exp.select(self._bind(node, env, now)).sql("duckdb")
        return con.execute(sql).fetchone()[0]

    def _run(self, con, stmt: exp.Expression, env, now) -> None:
        if isinstance(stmt, exp.Set) and not var(stmt.expressions[0].this.this):
            return  # SET NOCOUNT / XACT_ABORT: session options
        if isinstance(stmt, exp.Declare):
            for item in stmt.expressions:
                default = item.args.get("default")
                value = None
                if isinstance(default, exp.Expression):
                    value = self._eval(con, default, env, now)
                env[var(item.this[0])] = value
        elif isinstance(stmt, exp.Set):
            eq = stmt.expressions[0].this
            env[var(eq.this)] = self._eval(con, eq.expression, env, now)
        elif isinstance(stmt, exp.Select) and var(stmt.expressions[0].this):
            (assign,) = stmt.expressions
            query = stmt.copy()
            query.set("expressions", [assign.expression])
            row = con.execute(self._bind(query, env, now).sql("duckdb")).fetchone()
            env[var(assign.this)] = row[0] if row else None
        elif isinstance(stmt, exp.Transaction):
            con.execute("BEGIN TRANSACTION")
        elif isinstance(stmt, exp.Commit):
            con.execute("COMMIT")
        else:
            con.execute(self._bind(stmt, env, now).sql("duckdb"))


def _state_table_like_the_script(path: Path) -> None:
    """The simulator's queue.RefreshState has no Id column; give the copy the script's shape."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DROP TABLE queue.RefreshState")
        con.execute("CREATE TABLE queue.RefreshState (Id UTINYINT NOT NULL, LastRefresh TIMESTAMP)")
        (insert,) = [
            parse_tsql(s)
            for s in all_statements("02_queue_refresh.sql")
            if s.startswith("IF NOT EXISTS")
        ]
        con.execute(insert.find(exp.Insert).sql("duckdb"))
    finally:
        con.close()


def queue_contents(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name in QUEUE_TABLES:
            keys = ", ".join(f'"{k}"' for k in REPLICATED_TABLES[name].key)
            out[name] = con.execute(f'SELECT * FROM queue."{name}" ORDER BY {keys}').fetchall()
        out["_last"] = con.execute("SELECT LastRefresh FROM queue.RefreshState").fetchall()
        return out
    finally:
        con.close()


def test_queue_refresh_body_run_in_duckdb_matches_the_simulator(tmp_path):
    """Same file, same calls: the procedure's statements (translated to DuckDB) and the
    simulator's queue.Refresh leave identical queue tables and state after a first call, a
    later call, an explicit start and the resume after it."""
    # (not "sim.duckdb": DuckDB names the catalog after the file, and the simulator has a
    # schema `sim`)
    sim_path, proc_path = tmp_path / "by_simulator.duckdb", tmp_path / "by_procedure.duckdb"
    SyncSimulator.create(sim_path, seed=11, customers=40, clock_start=datetime(2026, 1, 5))
    shutil.copy(sim_path, proc_path)
    _state_table_like_the_script(proc_path)
    sim, proc = SyncSimulator(sim_path), ProcedureInDuckDb(proc_path)
    rates = ActivityRates().scaled(20.0)
    calls = [
        (timedelta(hours=3), None),  # first call ever: last 24 h
        (timedelta(hours=2), None),  # since the previous call
        (timedelta(hours=1), datetime(2026, 1, 5, 1, 30)),  # explicit start
        (timedelta(hours=2), None),  # resumes from the explicit call's time
    ]
    sizes = []
    for advance, start in calls:
        for path in (sim_path, proc_path):
            SyncSimulator(path).advance(advance, rates)
        sim.refresh(start)
        proc.call(start)
        expected, got = queue_contents(sim_path), queue_contents(proc_path)
        assert got == expected, f"differs after call with start={start}"
        sizes.append({k: len(v) for k, v in got.items() if k != "_last"})
    # The scenario exercises something: rows in every call, order lines travel with orders.
    assert all(sum(s.values()) > 0 for s in sizes)
    assert any(s["OrderDetails"] > 0 for s in sizes)


# --- 5. logins: exactly the documented permissions ----------------------------------------------


@dataclass(frozen=True)
class Permission:
    database: str
    principal: str
    permission: str
    securable: str  # "DATABASE", "SCHEMA::queue", "OBJECT::queue.Refresh"


def effective_permissions(values: dict[str, str]) -> tuple[set[Permission], dict, dict, dict]:
    """Run 04_logins.sql in the head: USE switches the database, GRANT adds, REVOKE removes,
    IF N'a' = N'b' is decided from the substituted sqlcmd variables. Also returns the schemas
    created with an owner, the users (database -> user -> default schema) and logins."""
    perms: set[Permission] = set()
    owned: dict[tuple[str, str], str] = {}
    users: dict[tuple[str, str], str] = {}
    logins: dict[str, str] = {}
    database = "master"

    def apply(sql: str) -> None:
        m = GRANT.fullmatch(sql)
        assert m, sql
        principal = m.group(m.lastindex)
        assert (database, principal) in users, f"grant to {principal} before its user"
        securable = "DATABASE"
        if m["cls"]:
            securable = f"{m['cls']}::" + re.sub(r"[\[\]]", "", m["sec"])
        for p in (p.strip() for p in m["perms"].split(",")):
            item = Permission(database, principal, p, securable)
            if m["verb"] == "GRANT":
                perms.add(item)
            else:
                perms.discard(item)

    for sql in all_statements("04_logins.sql", values):
        if m := re.fullmatch(rf"USE {IDENT}", sql):
            database = m[1]
        elif sql.startswith(("GRANT", "REVOKE")):
            apply(sql)
        elif m := re.fullmatch(
            r"IF N'(\w*)' (=|<>) N'(\w*)'\s+BEGIN\s+((?:GRANT|REVOKE) [^;]+);\s+END", sql
        ):
            if (m[1] == m[3]) == (m[2] == "="):
                apply(m[4])
        elif m := re.search(rf"CREATE SCHEMA {IDENT} AUTHORIZATION {IDENT}", sql):
            owned[(database, m[1])] = m[2]
        elif m := re.search(
            rf"CREATE USER {IDENT} FOR LOGIN {IDENT} WITH DEFAULT_SCHEMA = {IDENT}", sql
        ):
            users[(database, m[1])] = m[3]
        elif m := re.search(rf"CREATE LOGIN {IDENT} .* DEFAULT_DATABASE = (\w+)", sql):
            logins[m[1]] = m[2]
    return perms, owned, users, logins


SOURCE, WAREHOUSE = gen.SOURCE_LOGIN, gen.WAREHOUSE_LOGIN
DOCUMENTED = {
    Permission("ExigoSync", SOURCE, "EXECUTE", "OBJECT::queue.Refresh"),
    Permission("ExigoSync", SOURCE, "SELECT", "SCHEMA::queue"),
    Permission("ExigoSync", SOURCE, "SELECT", "SCHEMA::dbo"),
    Permission("ExigoSync", WAREHOUSE, "SELECT", "SCHEMA::queue"),
    Permission("ExigoSync", WAREHOUSE, "SELECT", "SCHEMA::dbo"),
    *(
        Permission(db, WAREHOUSE, p, "DATABASE")
        for db in ("ExigoSync", "ExigoWarehouse")
        for p in ("CREATE TABLE", "CREATE VIEW", "CREATE SCHEMA")
    ),
}
REFRESH_FOR_WAREHOUSE = Permission("ExigoSync", WAREHOUSE, "EXECUTE", "OBJECT::queue.Refresh")


def test_logins_grant_exactly_the_documented_permissions():
    no = {**SQLCMD_VARS, gen.WAREHOUSE_MAY_REFRESH_VAR: "no"}
    perms, owned, users, logins = effective_permissions(no)
    assert perms == DOCUMENTED
    # WarehouseMayRefresh=yes adds exactly EXECUTE on queue.Refresh for the warehouse login.
    perms_yes, *_ = effective_permissions(SQLCMD_VARS)
    assert perms_yes - perms == {REFRESH_FOR_WAREHOUSE} and perms <= perms_yes

    # The warehouse login owns exactly the exigo_* schemas exigo-sync writes, in both databases.
    schemas = gen.warehouse_schemas()
    assert {"exigo_staging", "exigo_history", "exigo_current", "exigo_marts", "exigo_sync"} <= set(
        schemas
    )
    assert owned == {(db, s): WAREHOUSE for db in ("ExigoSync", "ExigoWarehouse") for s in schemas}
    assert users == {
        ("ExigoSync", SOURCE): "queue",
        ("ExigoSync", WAREHOUSE): "exigo_sync",
        ("ExigoWarehouse", WAREHOUSE): "exigo_sync",
    }
    assert logins == {SOURCE: "ExigoSync", WAREHOUSE: "ExigoWarehouse"}


def test_logins_get_no_role_no_control_and_no_server_rights():
    text = substitute(read_sql("04_logins.sql")).upper()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    for forbidden in (
        "ALTER ROLE",
        "SP_ADDROLEMEMBER",
        "ALTER SERVER ROLE",
        "SP_ADDSRVROLEMEMBER",
        "IMPERSONATE",
        "TRUSTWORTHY",
        "WITH GRANT OPTION",
        "GRANT CONTROL",
        "DENY ",
    ):
        assert forbidden not in code, forbidden


def test_schema_guard_trigger_limits_schema_names_to_exigo():
    (trigger,) = [
        s for s in all_statements("04_logins.sql") if s.startswith("CREATE OR ALTER TRIGGER")
    ][:1]
    body = statements(re.search(r"BEGIN\s+(.*)\s+END;?$", trigger, re.DOTALL)[1])
    guard = parse_tsql(body[2])
    assert isinstance(guard, exp.IfBlock)
    cond = guard.this.sql("tsql")
    assert "IS_MEMBER(N'db_owner') = 0" in cond
    assert f"COALESCE(@Name, N'') NOT LIKE N'{gen.WAREHOUSE_SCHEMA_PATTERN}'" in cond
    inner = [type(e).__name__ for e in guard.args["true"].expressions]
    assert "Rollback" in inner
    # Both databases the warehouse login can create schemas in have the guard.
    assert (
        sum(s.startswith("CREATE OR ALTER TRIGGER") for s in all_statements("04_logins.sql")) == 2
    )
