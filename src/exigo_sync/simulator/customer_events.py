"""Customer activity: sign-ups in the enroller/sponsor tree, profile edits, status changes,
card and bank changes, replicated-site edits, and the physical deletion of customer, account
and site rows."""

from __future__ import annotations

from typing import Any

import duckdb

from exigo_sync.simulator import deletions, generate
from exigo_sync.simulator.db import execute, update_rows
from exigo_sync.simulator.rates import ActivityRates, ActivitySummary
from exigo_sync.simulator.sampling import count_rows, event_count, pick


def new_customers(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    k = event_count(con, p, "new_customers", rates.new_customers)
    if k == 0:
        return
    # Enroller and sponsor are existing customers: an id drawn below the first new one, or,
    # if that customer was purged, the nearest existing one below it (ASOF join).
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _nc AS
        WITH ids AS (SELECT ($next_customer_id + range)::INTEGER AS CustomerID FROM range($k)),
        drawn AS (
            SELECT CustomerID,
                rtime($seed, $step, CustomerID, 'created', $t0, $span_us) AS CreatedDate,
                rtime($seed, $step, CustomerID, 'created', $t0, $span_us) AS ModifiedDate,
                (1 + rint($seed, $step, CustomerID, 'enroller', $next_customer_id - 1))::INTEGER
                    AS EnrollerDraw,
                CASE WHEN rnd($seed, $step, CustomerID, 'sponsor_is_enroller') < 0.7
                     THEN (1 + rint($seed, $step, CustomerID, 'enroller', $next_customer_id - 1))
                     ELSE (1 + rint($seed, $step, CustomerID, 'sponsor', $next_customer_id - 1))
                     END::INTEGER AS SponsorDraw,
                CASE WHEN rnd($seed, 0, CustomerID, 'type') < 0.55 THEN 1
                     WHEN rnd($seed, 0, CustomerID, 'type') < 0.75 THEN 2 ELSE 3 END
                    AS CustomerTypeID,
                1 AS CustomerStatusID
            FROM ids
        )
        SELECT d.CustomerID, d.CreatedDate, d.ModifiedDate, e.CustomerID AS EnrollerID,
            s.CustomerID AS SponsorID, d.CustomerTypeID, d.CustomerStatusID
        FROM drawn d
        ASOF LEFT JOIN (SELECT CustomerID FROM dbo.Customers) e ON d.EnrollerDraw >= e.CustomerID
        ASOF LEFT JOIN (SELECT CustomerID FROM dbo.Customers) s ON d.SponsorDraw >= s.CustomerID
        """,
        {**p, "k": k},
    )
    generate.insert_customers(con, p)
    p["next_customer_id"] += k
    summary.add("new_customers", k)


def profile_edits(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A new phone, a new email, a move (main and mail address), a name change, or a note."""
    k = event_count(con, p, "profile_edits", rates.profile_edits)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_pe",
        "SELECT CustomerID, rnd($seed, $step, CustomerID, 'edit_kind') AS r FROM dbo.Customers "
        "WHERE CustomerStatusID <> 0 AND ModifiedDate < $t0",
        "CustomerID",
        k,
    )
    if n == 0:
        return
    execute(
        con,
        """
        CREATE OR REPLACE TEMP TABLE _pe2 AS
        SELECT e.*, a.Address1, a.Address2, a.City, a.State, a.Zip, a.County, a.Country,
               pp.LastName AS NewLastName, d.Value AS Domain,
               format('({:03d}) {:03d}-{:04d}', 201 + rint($seed, $step, e.CustomerID, 'np_a', 780),
                      200 + rint($seed, $step, e.CustomerID, 'np_b', 800),
                      rint($seed, $step, e.CustomerID, 'np_c', 10000)) AS NewPhone
        FROM _pe e
        -- a move stays in the customer's market (its currency's), as does a new surname
        JOIN dbo.Customers cu ON cu.CustomerID = e.CustomerID
        LEFT JOIN sim.Markets m ON m.CurrencyCode = cu.CurrencyCode
        JOIN sim.Places a ON a.idx = coalesce(m.PlacesFrom, 0)
            + rint($seed, $step, e.CustomerID, 'move', coalesce(m.PlacesCount, $n_places))
        JOIN sim.People pp ON pp.idx = coalesce(m.PeopleFrom, 0)
            + rint($seed, $step, e.CustomerID, 'rename', coalesce(m.PeopleCount, $n_people))
        JOIN sim.Domains d ON d.idx = rint($seed, $step, e.CustomerID, 'domain', $n_domains)
        """,
        p,
    )
    moved = "x.r >= 0.65 AND x.r < 0.85"
    renamed = "x.r >= 0.85 AND x.r < 0.95"
    sets = {
        "Phone": "CASE WHEN x.r < 0.35 THEN x.NewPhone ELSE c.Phone END",
        # a new address at another provider
        "Email": "CASE WHEN x.r >= 0.35 AND x.r < 0.65 THEN left(ascii_name(c.FirstName || '.' "
        "|| c.LastName) || c.CustomerID::VARCHAR || '@' || x.Domain, 50) ELSE c.Email END",
        "LastName": f"CASE WHEN {renamed} THEN x.NewLastName ELSE c.LastName END",
        "Notes": "CASE WHEN x.r >= 0.95 THEN coalesce(c.Notes || chr(10), '') || "
        "'Customer called on ' || strftime(x.T, '%Y-%m-%d') || ' about an order.' ELSE c.Notes END",
        "ModifiedBy": "'Web'",
        "ModifiedDate": "x.T",
    }
    for prefix in ("Main", "Mail"):
        for col, src in (
            ("Address1", "Address1"),
            ("Address2", "Address2"),
            ("City", "City"),
            ("State", "State"),
            ("Zip", "Zip"),
            ("County", "County"),
            ("Country", "Country"),
        ):
            sets[prefix + col] = f"CASE WHEN {moved} THEN x.{src} ELSE c.{prefix}{col} END"
    sets["MainVerified"] = f"CASE WHEN {moved} THEN false ELSE c.MainVerified END"
    update_rows(con, "Customers", "c", sets, "FROM _pe2 x WHERE c.CustomerID = x.CustomerID", p)
    summary.add("profile_edits", n)


def status_changes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """Active customers go Deleted (0), Inactive (2) or Terminated (3); some come back (1)."""
    k = event_count(con, p, "status_changes", rates.status_changes)
    if k == 0:
        return
    pick(
        con,
        p,
        "_st",
        """
        SELECT CustomerID,
            CASE WHEN CustomerStatusID = 0 THEN 1
                 WHEN rnd($seed, $step, CustomerID, 'new_status') < 0.4 THEN 0
                 WHEN rnd($seed, $step, CustomerID, 'new_status') < 0.75 THEN 2
                 WHEN rnd($seed, $step, CustomerID, 'new_status') < 0.85 THEN 3
                 WHEN CustomerStatusID <> 1 THEN 1 ELSE 2 END AS NewStatus,
            CustomerStatusID AS OldStatus
        FROM dbo.Customers WHERE ModifiedDate < $t0
        """,
        "CustomerID",
        k,
    )
    con.execute("DELETE FROM _st WHERE NewStatus = OldStatus")
    update_rows(
        con,
        "Customers",
        "c",
        {
            "CustomerStatusID": "x.NewStatus",
            "TerminationReason": "CASE WHEN x.NewStatus = 3 THEN 1 ELSE c.TerminationReason END",
            "ModifiedBy": "'Admin'",
            "ModifiedDate": "x.T",
        },
        "FROM _st x WHERE c.CustomerID = x.CustomerID",
        p,
    )
    summary.add("status_changes", count_rows(con, "SELECT count(*) FROM _st"))
    summary.add(
        "customers_deleted", count_rows(con, "SELECT count(*) FROM _st WHERE NewStatus = 0")
    )


def account_changes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A replaced primary card, a secondary card added, or new bank details."""
    k = event_count(con, p, "account_changes", rates.account_changes)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_acc",
        "SELECT CustomerID, rnd($seed, $step, CustomerID, 'acc_kind') AS r "
        "FROM dbo.CustomerAccounts WHERE ModifiedDate < $t0",
        "CustomerID",
        k,
    )
    if n == 0:
        return
    card4 = (
        "'************' || lpad(rint($seed, $step, a.CustomerID, 'card4', 10000)::VARCHAR, 4, '0')"
    )
    new_card = "x.r < 0.6"
    second = "x.r >= 0.6 AND x.r < 0.8"
    bank = "x.r >= 0.8"
    update_rows(
        con,
        "CustomerAccounts",
        "a",
        {
            "CreditCardDisplay": f"CASE WHEN {new_card} THEN {card4} ELSE a.CreditCardDisplay END",
            "ExpirationMonth": f"CASE WHEN {new_card} THEN 1 + rint($seed, $step, a.CustomerID, "
            "'exp_m', 12) ELSE a.ExpirationMonth END",
            "ExpirationYear": f"CASE WHEN {new_card} THEN year(x.T) + 2 + rint($seed, $step, "
            "a.CustomerID, 'exp_y', 4) ELSE a.ExpirationYear END",
            "CreditCardToken": f"CASE WHEN {new_card} THEN md5('tok:' || $seed::VARCHAR || ':' || "
            "$step::VARCHAR || ':' || a.CustomerID::VARCHAR) ELSE a.CreditCardToken END",
            "CreditCardDisplay2": f"CASE WHEN {second} THEN {card4} ELSE a.CreditCardDisplay2 END",
            "ExpirationMonth2": f"CASE WHEN {second} THEN 1 + rint($seed, $step, a.CustomerID, "
            "'exp_m', 12) ELSE a.ExpirationMonth2 END",
            "ExpirationYear2": f"CASE WHEN {second} THEN year(x.T) + 2 ELSE a.ExpirationYear2 END",
            "CreditCardTypeID2": f"CASE WHEN {second} THEN 1 + rint($seed, $step, a.CustomerID, "
            "'ct2', 4) ELSE a.CreditCardTypeID2 END",
            "BillingName2": f"CASE WHEN {second} THEN a.BillingName ELSE a.BillingName2 END",
            "CreditCardToken2": f"CASE WHEN {second} THEN md5('tok2:' || $seed::VARCHAR || ':' || "
            "$step::VARCHAR || ':' || a.CustomerID::VARCHAR) ELSE a.CreditCardToken2 END",
            "BankAccountNumber": f"CASE WHEN {bank} THEN lpad(rint($seed, $step, a.CustomerID, "
            "'bank_acct', 1000000000)::VARCHAR, 10, '0') ELSE a.BankAccountNumber END",
            "BankRoutingNumber": f"CASE WHEN {bank} THEN lpad(rint($seed, $step, a.CustomerID, "
            "'bank_rt', 1000000000)::VARCHAR, 9, '0') ELSE a.BankRoutingNumber END",
            "BankNameOnAccount": (
                f"CASE WHEN {bank} THEN a.BillingName ELSE a.BankNameOnAccount END"
            ),
            "BankAccountType": f"CASE WHEN {bank} THEN 1 ELSE a.BankAccountType END",
            "ModifiedBy": "'Web'",
            "ModifiedDate": "x.T",
        },
        "FROM _acc x WHERE a.CustomerID = x.CustomerID",
        p,
    )
    summary.add("account_changes", n)


def site_edits(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A distributor edits the replicated site: welcome text, a social link, or a phone."""
    k = event_count(con, p, "site_edits", rates.site_edits)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_site",
        "SELECT CustomerID, rnd($seed, $step, CustomerID, 'site_kind') AS r "
        "FROM dbo.CustomerSites WHERE ModifiedDate < $t0",
        "CustomerID",
        k,
    )
    if n == 0:
        return
    update_rows(
        con,
        "CustomerSites",
        "s",
        {
            "Notes1": "CASE WHEN x.r < 0.4 THEN 'Welcome! Ask me about this month''s specials ("
            "updated ' || strftime(x.T, '%Y-%m-%d') || ').' ELSE s.Notes1 END",
            "Url2": "CASE WHEN x.r >= 0.4 AND x.r < 0.75 THEN 'https://www.instagram.com/' || "
            "s.WebAlias ELSE s.Url2 END",
            "Url2Description": "CASE WHEN x.r >= 0.4 AND x.r < 0.75 THEN 'Instagram' "
            "ELSE s.Url2Description END",
            "Phone": "CASE WHEN x.r >= 0.75 THEN format('({:03d}) {:03d}-{:04d}', 201 + "
            "rint($seed, $step, s.CustomerID, 'sp_a', 780), 200 + rint($seed, $step, "
            "s.CustomerID, 'sp_b', 800), rint($seed, $step, s.CustomerID, 'sp_c', 10000)) "
            "ELSE s.Phone END",
            "ModifiedDate": "x.T",
        },
        "FROM _site x WHERE s.CustomerID = x.CustomerID",
        p,
    )
    summary.add("site_edits", n)


def customer_purges(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A customer row physically deleted (a duplicate or test sign-up), with its account and
    site rows. Only a customer nothing refers to: no order, no payment, nobody it enrolled or
    sponsored (see simulator.deletions: a customer with history gets status 0 instead)."""
    k = event_count(con, p, "customer_purges", rates.customer_purges)
    if k == 0:
        return
    n = pick(
        con,
        p,
        "_cpurge",
        # Each step narrows the candidates, and the orders and payments are only probed for
        # the remaining ones (SEMI JOIN hashes the small side): at 1M customers and 5M orders
        # this is about half the cost of four NOT EXISTS.
        """
        WITH unchanged AS (SELECT CustomerID FROM dbo.Customers WHERE ModifiedDate < $t0),
        no_downline AS (
            SELECT CustomerID FROM unchanged
            ANTI JOIN (SELECT EnrollerID AS CustomerID FROM dbo.Customers) e USING (CustomerID)
            ANTI JOIN (SELECT SponsorID AS CustomerID FROM dbo.Customers) s USING (CustomerID)
        ),
        no_orders AS (
            SELECT CustomerID FROM no_downline ANTI JOIN (
                SELECT o.CustomerID FROM dbo.Orders o SEMI JOIN no_downline USING (CustomerID)
            ) x USING (CustomerID)
        )
        SELECT CustomerID FROM no_orders ANTI JOIN (
            SELECT y.CustomerID FROM dbo.Payments y SEMI JOIN no_orders USING (CustomerID)
        ) z USING (CustomerID)
        """,
        "CustomerID",
        k,
    )
    if n == 0:
        return
    for table in ("CustomerAccounts", "CustomerSites", "Customers"):
        deletions.delete_rows(con, table, "_cpurge", ("CustomerID",), deletions.CUSTOMER_PURGED)
    summary.add("customers_purged", n)


def account_deletes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """Every card and bank account on file removed: the CustomerAccounts row goes, the
    customer stays."""
    _delete_customer_rows(con, p, summary, "CustomerAccounts", rates.account_deletes, "accounts")


def site_deletes(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    rates: ActivityRates,
    summary: ActivitySummary,
) -> None:
    """A distributor's replicated site taken down: the CustomerSites row goes, the customer
    stays."""
    _delete_customer_rows(con, p, summary, "CustomerSites", rates.site_deletes, "sites")


def _delete_customer_rows(
    con: duckdb.DuckDBPyConnection,
    p: dict[str, Any],
    summary: ActivitySummary,
    table: str,
    rate: float,
    noun: str,
) -> None:
    k = event_count(con, p, f"{noun}_deletes", rate)
    if k == 0:
        return
    picked = f"_{noun}_del"
    n = pick(
        con,
        p,
        picked,
        f"SELECT CustomerID FROM dbo.{table} WHERE ModifiedDate < $t0",
        "CustomerID",
        k,
    )
    if n == 0:
        return
    cause = deletions.ACCOUNT_DELETED if table == "CustomerAccounts" else deletions.SITE_DELETED
    deletions.delete_rows(con, table, picked, ("CustomerID",), cause)
    summary.add(f"{noun}_deleted", n)
