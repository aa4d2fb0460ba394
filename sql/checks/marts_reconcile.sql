-- check marts_reconcile: the marts add up to the facts they summarise. An incremental build
-- maintains the marts by differences (incremental/mart_*), so this is what catches a drift.
--   mart_store_rentals.*     rentals, returns, late_returns, payment_total and rental_hours_total
--                            summed over the mart equal the same measures over gold fact_rental
--   mart_store_rentals.rows  rows whose rentals <> returns + open_rentals or whose
--                            avg_rental_hours is not rental_hours_total / returns (expected 0)
--   mart_revenue_monthly.*   payment_count and revenue summed over the mart equal the payments of
--                            gold fact_sales counted once per bridge_film_category row of their
--                            film (a film with several categories counts in each of them)
-- Cheap: one pass over each fact (fact_sales is summed per film before meeting the bridge).
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH facts_r AS (
    SELECT
        count(*)::BIGINT                                   AS rentals,
        count_if(is_returned)::BIGINT                      AS returns,
        count_if(days_late > 0)::BIGINT                    AS late_returns,
        coalesce(sum(payment_total), 0)::DECIMAL(38,2)     AS payment_total,
        coalesce(sum(rental_hours), 0)::DECIMAL(38,6)      AS rental_hours_total
    FROM {{gold}}.fact_rental
),
mart_r AS (
    SELECT
        coalesce(sum(rentals), 0)::BIGINT                  AS rentals,
        coalesce(sum(returns), 0)::BIGINT                  AS returns,
        coalesce(sum(late_returns), 0)::BIGINT             AS late_returns,
        coalesce(sum(payment_total), 0)::DECIMAL(38,2)     AS payment_total,
        coalesce(sum(rental_hours_total), 0)::DECIMAL(38,6) AS rental_hours_total,
        count(*) FILTER (WHERE rentals IS DISTINCT FROM returns + open_rentals
            OR avg_rental_hours IS DISTINCT FROM
               CASE WHEN returns > 0 THEN (rental_hours_total / returns)::DECIMAL(18,2) END)::BIGINT
                                                           AS bad_rows
    FROM {{gold}}.mart_store_rentals
),
links AS (
    SELECT film_key, count(*) AS n FROM {{gold}}.bridge_film_category GROUP BY film_key
),
per_film AS (
    SELECT film_key, count(*) AS payments, sum(amount) AS amount
    FROM {{gold}}.fact_sales
    GROUP BY film_key
),
facts_s AS (
    SELECT
        coalesce(sum(f.payments * l.n), 0)::BIGINT         AS payment_count,
        coalesce(sum(f.amount * l.n), 0)::DECIMAL(38,2)    AS revenue
    FROM per_film AS f
    JOIN links AS l ON l.film_key = f.film_key
),
mart_s AS (
    SELECT
        coalesce(sum(payment_count), 0)::BIGINT            AS payment_count,
        coalesce(sum(revenue), 0)::DECIMAL(38,2)           AS revenue
    FROM {{gold}}.mart_revenue_monthly
),
results AS (
    SELECT 'mart_store_rentals.rentals' AS what, f.rentals::VARCHAR AS expected, m.rentals::VARCHAR AS actual
    FROM facts_r AS f, mart_r AS m
    UNION ALL
    SELECT 'mart_store_rentals.returns', f.returns::VARCHAR, m.returns::VARCHAR FROM facts_r AS f, mart_r AS m
    UNION ALL
    SELECT 'mart_store_rentals.late_returns', f.late_returns::VARCHAR, m.late_returns::VARCHAR
    FROM facts_r AS f, mart_r AS m
    UNION ALL
    SELECT 'mart_store_rentals.payment_total', f.payment_total::VARCHAR, m.payment_total::VARCHAR
    FROM facts_r AS f, mart_r AS m
    UNION ALL
    SELECT 'mart_store_rentals.rental_hours_total', f.rental_hours_total::VARCHAR,
           m.rental_hours_total::VARCHAR
    FROM facts_r AS f, mart_r AS m
    UNION ALL
    SELECT 'mart_store_rentals.rows', '0', m.bad_rows::VARCHAR FROM mart_r AS m
    UNION ALL
    SELECT 'mart_revenue_monthly.payment_count', f.payment_count::VARCHAR, m.payment_count::VARCHAR
    FROM facts_s AS f, mart_s AS m
    UNION ALL
    SELECT 'mart_revenue_monthly.revenue', f.revenue::VARCHAR, m.revenue::VARCHAR
    FROM facts_s AS f, mart_s AS m
)
SELECT 'marts_reconcile:' || what AS "check", expected, actual, expected = actual AS ok
FROM results
ORDER BY 1;
