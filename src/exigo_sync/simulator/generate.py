"""Set-based row builders shared by the base population and the activity generator.

Each builder reads a small temp table of "what to create" (ids, times, a few decisive values)
and fills every other column from the Faker pools by hash, in one INSERT ... SELECT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from exigo_sync.simulator.db import insert_rows, update_rows

# Customers: reads temp _nc(CustomerID, CreatedDate, ModifiedDate, EnrollerID, SponsorID,
# CustomerTypeID, CustomerStatusID). Each customer belongs to a market (sim.Markets, by a draw
# weighted by its share): its name and address come from the market's slice of the pools, its
# currency from the market. Emails and logins are ASCII whatever the name's accents.
_CUSTOMERS_SQL = """
SELECT
    c.CustomerID,
    p.FirstName, p.MiddleName, p.LastName, '' AS NameSuffix,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'has_company') < 0.08 THEN co.Value ELSE '' END
        AS Company,
    c.CustomerTypeID, c.CustomerStatusID,
    left(ascii_name(p.FirstName || '.' || p.LastName) || c.CustomerID::VARCHAR || '@' || d.Value,
         50) AS Email,
    format('({:03d}) {:03d}-{:04d}', 201 + rint($seed, 0, c.CustomerID, 'ph_a', 780),
           200 + rint($seed, 0, c.CustomerID, 'ph_b', 800),
           rint($seed, 0, c.CustomerID, 'ph_c', 10000)) AS Phone,
    '' AS Phone2,
    format('({:03d}) {:03d}-{:04d}', 201 + rint($seed, 0, c.CustomerID, 'mp_a', 780),
           200 + rint($seed, 0, c.CustomerID, 'mp_b', 800),
           rint($seed, 0, c.CustomerID, 'mp_c', 10000)) AS MobilePhone,
    '' AS Fax,
    a.Address1 AS MainAddress1, a.Address2 AS MainAddress2, '' AS MainAddress3,
    a.City AS MainCity, a.State AS MainState, a.Zip AS MainZip, a.Country AS MainCountry,
    a.County AS MainCounty, rnd($seed, 0, c.CustomerID, 'verified') < 0.7 AS MainVerified,
    a.Address1 AS MailAddress1, a.Address2 AS MailAddress2, '' AS MailAddress3,
    a.City AS MailCity, a.State AS MailState, a.Zip AS MailZip, a.Country AS MailCountry,
    a.County AS MailCounty, false AS MailVerified,
    '' AS OtherAddress1, NULL AS OtherAddress2, '' AS OtherAddress3, '' AS OtherCity,
    '' AS OtherState, '' AS OtherZip, '' AS OtherCountry, '' AS OtherCounty,
    false AS OtherVerified,
    c.CustomerTypeID <> 1 AS CanLogin,
    CASE WHEN c.CustomerTypeID <> 1
         THEN ascii_name(left(p.FirstName, 1) || p.LastName) || c.CustomerID::VARCHAR END
        AS LoginName,
    CASE WHEN c.CustomerTypeID <> 1
         THEN unhex(md5($seed::VARCHAR || ':' || c.CustomerID::VARCHAR)) END AS PasswordHash,
    CASE WHEN c.CustomerTypeID = 3 THEN 1 + rint($seed, 0, c.CustomerID, 'rank', 5) END AS RankID,
    c.EnrollerID, c.SponsorID,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'has_bd') < 0.6
         THEN DATE '1950-01-01' + rint($seed, 0, c.CustomerID, 'bd', 18000)::INTEGER
         END::TIMESTAMP AS BirthDate,
    m.CurrencyCode, 0 AS LanguageID, p.Gender,
    left(p.FirstName || ' ' || p.LastName, 50) AS PayableToName,
    1 AS DefaultWarehouseID, 1 AS PayableTypeID, 0 AS CheckThreshold,
    CASE WHEN c.CustomerTypeID = 3
         THEN format('{:03d}-{:02d}-{:04d}', 100 + rint($seed, 0, c.CustomerID, 'ssn_a', 800),
                     10 + rint($seed, 0, c.CustomerID, 'ssn_b', 89),
                     1000 + rint($seed, 0, c.CustomerID, 'ssn_c', 9000)) END AS TaxCode,
    1 AS TaxCodeTypeID, false AS IsSalesTaxExempt, '' AS VatRegistration,
    0 AS BinaryPlacementTypeID, false AS UseBinaryHoldingTank, false AS IsInBinaryHoldingTank,
    rnd($seed, 0, c.CustomerID, 'em_sub') < 0.6 AS IsEmailSubscribed,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'em_sub') < 0.6
         THEN format('{}.{}.{}.{}', 11 + rint($seed, 0, c.CustomerID, 'ip1', 200),
                     rint($seed, 0, c.CustomerID, 'ip2', 256),
                     rint($seed, 0, c.CustomerID, 'ip3', 256),
                     1 + rint($seed, 0, c.CustomerID, 'ip4', 254)) END AS EmailSubscribeIP,
    rnd($seed, 0, c.CustomerID, 'sms_sub') < 0.3 AS IsSMSSubscribed,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'em_sub') < 0.6 THEN c.CreatedDate END
        AS EmailSubscribeDate,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'sms_sub') < 0.3 THEN c.CreatedDate END
        AS SMSSubscribeDate,
    CASE c.CustomerTypeID WHEN 3 THEN 'Distributor' ELSE 'Customer' END AS Field1,
    c.CreatedDate, c.ModifiedDate,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'by') < 0.85 THEN 'Web' ELSE 'Import' END AS CreatedBy,
    CASE WHEN rnd($seed, 0, c.CustomerID, 'by') < 0.85 THEN 'Web' ELSE 'Import' END AS ModifiedBy
FROM _nc c
JOIN sim.Markets m ON rnd($seed, 0, c.CustomerID, 'market') >= m.ShareFrom
                  AND rnd($seed, 0, c.CustomerID, 'market') < m.ShareTo
JOIN sim.People p ON p.idx = m.PeopleFrom + rint($seed, 0, c.CustomerID, 'person', m.PeopleCount)
JOIN sim.Places a ON a.idx = m.PlacesFrom + rint($seed, 0, c.CustomerID, 'place', m.PlacesCount)
JOIN sim.Companies co ON co.idx = rint($seed, 0, c.CustomerID, 'company', $n_companies)
JOIN sim.Domains d ON d.idx = rint($seed, 0, c.CustomerID, 'domain', $n_domains)
"""

# Card on file for every new customer; a bank account for distributors (commission deposits).
_ACCOUNTS_SQL = """
SELECT
    c.CustomerID,
    '************' || lpad(rint($seed, $step, c.CustomerID, 'card4', 10000)::VARCHAR, 4, '0')
        AS CreditCardDisplay,
    1 + rint($seed, $step, c.CustomerID, 'exp_m', 12) AS ExpirationMonth,
    year(c.ModifiedDate) + 1 + rint($seed, $step, c.CustomerID, 'exp_y', 5) AS ExpirationYear,
    1 + rint($seed, $step, c.CustomerID, 'card_type', 4) AS CreditCardTypeID,
    left(c.FirstName || ' ' || c.LastName, 50) AS BillingName,
    c.MainAddress1 AS BillingAddress, c.MainAddress2 AS BillingAddress2,
    c.MainCity AS BillingCity, c.MainState AS BillingState, c.MainZip AS BillingZip,
    c.MainCountry AS BillingCountry,
    '' AS BillingName2,
    CASE WHEN c.CustomerTypeID = 3
         THEN lpad(rint($seed, $step, c.CustomerID, 'bank_acct', 1000000000)::VARCHAR, 10, '0')
         END AS BankAccountNumber,
    CASE WHEN c.CustomerTypeID = 3
         THEN lpad(rint($seed, $step, c.CustomerID, 'bank_rt', 1000000000)::VARCHAR, 9, '0')
         ELSE '' END AS BankRoutingNumber,
    CASE WHEN c.CustomerTypeID = 3 THEN left(c.FirstName || ' ' || c.LastName, 50) ELSE '' END
        AS BankNameOnAccount,
    CASE WHEN c.CustomerTypeID = 3 THEN 1 ELSE 0 END AS BankAccountType,
    CASE WHEN c.CustomerTypeID = 3 THEN b.Value ELSE '' END AS DepositBankName,
    1 + rint($seed, $step, c.CustomerID, 'card_type', 4) AS CreditCardTokenType,
    md5('tok:' || $seed::VARCHAR || ':' || $step::VARCHAR || ':' || c.CustomerID::VARCHAR)
        AS CreditCardToken,
    c.ModifiedDate, 'Web' AS ModifiedBy
FROM dbo.Customers c
JOIN _nc n ON n.CustomerID = c.CustomerID
JOIN sim.Banks b ON b.idx = rint($seed, 0, c.CustomerID, 'bank', $n_banks)
"""

_SITES_SQL = """
SELECT
    c.CustomerID,
    ascii_name(c.FirstName || c.LastName) || c.CustomerID::VARCHAR AS WebAlias,
    c.FirstName, c.LastName, c.Company, c.Email, c.Phone, '' AS Phone2, '' AS Fax,
    c.MainAddress1 AS Address1, coalesce(c.MainAddress2, '') AS Address2,
    c.MainCity AS City, c.MainState AS State, c.MainZip AS Zip, c.MainCountry AS Country,
    'Welcome to my store!' AS Notes1,
    'https://www.facebook.com/' || lower(c.FirstName || c.LastName) AS Url1,
    'Facebook' AS Url1Description,
    c.ModifiedDate
FROM dbo.Customers c
JOIN _nc n ON n.CustomerID = c.CustomerID
WHERE n.CustomerTypeID = 3
"""


def insert_customers(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> int:
    """Customers of temp _nc, with a CustomerAccounts row each and a site for distributors."""
    n = insert_rows(con, "Customers", _CUSTOMERS_SQL, params)
    insert_rows(con, "CustomerAccounts", _ACCOUNTS_SQL, params)
    insert_rows(con, "CustomerSites", _SITES_SQL, params)
    return n


# Lines: reads temp _nl(OrderID, OrderLine, ItemIdx, Quantity, Sign), Sign = -1 for returns, and
# temp _no (the orders they belong to): each item is priced from the price list of the ordering
# customer's currency (sim.Markets: the catalogue's USD price times the market's factor, as an
# .x5 price), the catalogue's own price in USD or in a currency no market has.
_LINES_SQL = """
SELECT
    l.OrderID, l.OrderLine,
    ruuid($seed, 0, l.OrderID * 8 + l.OrderLine, 'line_uuid') AS OrderDetailID,
    l.ItemID, l.ItemCode, l.ItemDescription,
    l.Sign * l.Quantity AS Quantity, l.Price AS PriceEach,
    l.Sign * l.Quantity * l.Price AS PriceTotal,
    round(l.Sign * l.Quantity * l.Price * 0.0725, 2) AS Tax,
    l.Weight AS WeightEach, l.Quantity * l.Weight AS Weight,
    l.BusinessVolume AS BusinessVolumeEach,
    l.Sign * l.Quantity * l.BusinessVolume AS BusinessVolume,
    l.BusinessVolume AS CommissionableVolumeEach,
    l.Sign * l.Quantity * l.BusinessVolume AS CommissionableVolume,
    l.Sign * l.Quantity * l.Price AS Taxable,
    round(l.Sign * l.Quantity * l.Price * 0.0725, 2) AS StateTax,
    false AS IsStateTaxOverride, '' AS Reference1
FROM (
    SELECT l.*, s.ItemID, s.ItemCode, s.ItemDescription, s.BusinessVolume, s.Weight,
        CASE WHEN coalesce(m.PriceFactor, 1) = 1 THEN s.Price
             ELSE round(s.Price * m.PriceFactor, 0) - 0.05 END AS Price
    FROM _nl l
    JOIN sim.Items s ON s.idx = l.ItemIdx
    JOIN _no n ON n.OrderID = l.OrderID
    JOIN dbo.Customers c ON c.CustomerID = n.CustomerID
    LEFT JOIN sim.Markets m ON m.CurrencyCode = c.CurrencyCode
) l
"""

# Orders: reads temp _no(OrderID, CustomerID, OrderDate, OrderStatusID, OrderTypeID, IsRMA,
# ParentOrderID, ShippedDate, ModifiedDate); totals come from the lines just inserted. An order
# ships to its customer's address, in its customer's currency.
_ORDERS_SQL = """
SELECT
    o.OrderID, o.CustomerID, o.OrderStatusID, 1 AS WarehouseID,
    1 + rint($seed, 0, o.OrderID, 'ship_method', 3) AS ShipMethodID,
    o.OrderTypeID, CASE c.CustomerTypeID WHEN 1 THEN 1 ELSE 2 END AS PriceTypeID,
    o.OrderDate, c.CurrencyCode,
    c.FirstName, c.MiddleName, c.LastName, c.NameSuffix, c.Company,
    c.MainAddress1 AS Address1, coalesce(c.MainAddress2, '') AS Address2, '' AS Address3,
    c.MainCity AS City, c.MainState AS State, c.MainZip AS Zip, c.MainCountry AS Country,
    c.MainCounty AS County, c.Email, c.Phone, '' AS Notes,
    t.SubTotal + t.Tax + t.Shipping AS Total, t.SubTotal, t.Tax AS TaxTotal,
    t.Shipping AS ShippingTotal, t.Weight AS WeightTotal, t.BV AS BusinessVolumeTotal,
    t.BV AS CommissionableVolumeTotal, t.SubTotal AS TotalTaxable, t.Tax AS OrderTax,
    t.Tax AS StateTaxTotal,
    CASE WHEN o.ShippedDate IS NOT NULL
         THEN '1Z' || upper(substr(md5('trk:' || o.OrderID::VARCHAR), 1, 16)) ELSE '' END
        AS TrackingNumber1,
    true AS IsCommissionable, false AS SuppressPackSlipPrice, o.IsRMA,
    o.ParentOrderID, 0 AS BatchID,
    CASE WHEN o.OrderStatusID = 2 THEN 1 ELSE 0 END AS DeclineCount,
    o.ShippedDate, o.OrderDate AS CreatedDate, o.ModifiedDate,
    'Web' AS CreatedBy, 'Web' AS ModifiedBy
FROM _no o
JOIN dbo.Customers c ON c.CustomerID = o.CustomerID
JOIN (
    -- shipping: the flat fee of the customer's market, in its currency (none on a return)
    SELECT d.OrderID, sum(d.PriceTotal) AS SubTotal, sum(d.Tax) AS Tax, sum(d.Weight) AS Weight,
           sum(d.BusinessVolume) AS BV,
           CASE WHEN sum(d.PriceTotal) >= 0 THEN coalesce(any_value(m.ShippingFee), 9.95)
                ELSE 0 END AS Shipping
    FROM dbo.OrderDetails d
    JOIN _no n ON n.OrderID = d.OrderID
    JOIN dbo.Customers c ON c.CustomerID = n.CustomerID
    LEFT JOIN sim.Markets m ON m.CurrencyCode = c.CurrencyCode
    GROUP BY d.OrderID
) t ON t.OrderID = o.OrderID
"""


def insert_orders(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> int:
    """Orders of temp _no with their lines from temp _nl."""
    insert_rows(con, "OrderDetails", _LINES_SQL, params)
    return insert_rows(con, "Orders", _ORDERS_SQL, params)


# Payments: reads temp _np(PaymentID, OrderID, PaymentDate); one payment covers the order total.
_PAYMENTS_SQL = """
SELECT
    p.PaymentID, o.CustomerID, o.OrderID,
    CASE WHEN r < 0.86 THEN 1 WHEN r < 0.91 THEN 17 WHEN r < 0.95 THEN 7 WHEN r < 0.97 THEN 2
         WHEN r < 0.98 THEN 6 WHEN r < 0.99 THEN 10 ELSE 0 END AS PaymentTypeID,
    p.PaymentDate, o.Total AS Amount, o.CurrencyCode, o.WarehouseID,
    left(o.FirstName || ' ' || o.LastName, 50) AS BillingName,
    CASE WHEN r < 0.86 THEN 1 + rint($seed, 0, p.PaymentID, 'card_type', 4) ELSE 0 END
        AS CreditCardTypeID,
    CASE WHEN r < 0.86
         THEN '************'
              || lpad(rint($seed, 0, o.CustomerID, 'card4', 10000)::VARCHAR, 4, '0') END
        AS CreditCardNumber,
    CASE WHEN r < 0.86 THEN upper(substr(md5('auth:' || p.PaymentID::VARCHAR), 1, 6)) END
        AS AuthorizationCode,
    CASE WHEN r >= 0.95 AND r < 0.97
         THEN (1000 + rint($seed, 0, p.PaymentID, 'chk', 9000))::VARCHAR END AS CheckNumber,
    CASE WHEN r >= 0.86 AND r < 0.91 THEN 1 END AS WalletTypeID,
    CASE WHEN r < 0.86 THEN 1 END AS MerchantTypeID,
    CASE WHEN r < 0.86 THEN 'ch_' || substr(md5('mtk:' || p.PaymentID::VARCHAR), 1, 24) END
        AS MerchantTransactionKey,
    o.Address1 AS BillingAddress1, o.Address2 AS BillingAddress2, o.City AS BillingCity,
    o.State AS BillingState, o.Zip AS BillingZip, o.Country AS BillingCountry,
    p.PaymentDate AS ModifiedDate
FROM (SELECT *, rnd($seed, 0, PaymentID, 'pay_type') AS r FROM _np) p
JOIN dbo.Orders o ON o.OrderID = p.OrderID
"""


def insert_payments(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> int:
    return insert_rows(con, "Payments", _PAYMENTS_SQL, params)


def recompute_order_totals(
    con: duckdb.DuckDBPyConnection, ids_table: str, params: Mapping[str, Any]
) -> None:
    """Re-derive order totals from the current lines of the orders listed in `ids_table`
    (after a line edit or removal)."""
    update_rows(
        con,
        "Orders",
        "o",
        {
            "SubTotal": "t.SubTotal",
            "TaxTotal": "t.Tax",
            "OrderTax": "t.Tax",
            "StateTaxTotal": "t.Tax",
            "TotalTaxable": "t.SubTotal",
            "Total": "t.SubTotal + t.Tax + o.ShippingTotal",
            "BusinessVolumeTotal": "t.BV",
            "CommissionableVolumeTotal": "t.BV",
            "WeightTotal": "t.Weight",
        },
        f"""
        FROM (
            SELECT OrderID, sum(PriceTotal) AS SubTotal, sum(Tax) AS Tax,
                   sum(BusinessVolume) AS BV, sum(coalesce(Weight, 0)) AS Weight
            FROM dbo.OrderDetails WHERE OrderID IN (SELECT OrderID FROM {ids_table})
            GROUP BY OrderID
        ) t
        WHERE o.OrderID = t.OrderID
        """,
        params,
    )
