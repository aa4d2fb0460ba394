-- mart_revenue_monthly: revenue per calendar month (UTC), store and film category.
-- Grain: one row per (month, store_key, category_key) with at least one payment.
-- Keys: month_start (first day of the month), store_key -> dim_store, category_key ->
-- dim_category. -1 keys collect payments whose rental, store or category is unknown.
-- Measures:
--   payment_count  payments of films in the category.
--   revenue        DECIMAL(18,2) sum(amount) of those payments. A film with several
--                  categories counts fully in each of them (as Pagila's
--                  sales_by_film_category view does), so revenue is additive over months
--                  and stores but NOT over categories.
--   revenue_allocated DECIMAL(18,6): amount x bridge weighting_factor, rounded per payment
--                  and category to 6 decimals, additive over categories too (grand total
--                  equals total payments to within a few millionths).
-- store_key is a version of the store (dim_store is SCD2): payments count under the version valid
-- at payment_date, store_id identifies the store across versions.
-- The payments are first summed per (month, store_key, film_key, amount): the joins then meet about
-- a hundred thousand rows instead of every payment, and count x round(amount x weight) is exactly the
-- per-payment rounding above.
-- Source: gold fact_sales, dim_date, dim_store, bridge_film_category, dim_category.
-- incremental/mart_revenue_monthly maintains the same rows in an incremental build.
CREATE OR REPLACE TABLE {{gold}}.mart_revenue_monthly AS
WITH months AS (
    SELECT DISTINCT date_key // 100 AS month_key, year, month, month_name
    FROM {{gold}}.dim_date
),
sales AS (
    SELECT date_key // 100 AS month_key, store_key, film_key, amount, count(*) AS n
    FROM {{gold}}.fact_sales
    GROUP BY ALL
)
SELECT
    make_date(m.year, m.month, 1)                    AS month_start,
    m.year,
    m.month,
    m.month_name,
    s.store_key,
    ds.store_id,
    b.category_key,
    dc.category,
    sum(s.n)::BIGINT                                 AS payment_count,
    sum(s.n * s.amount)::DECIMAL(18,2)               AS revenue,
    sum(s.n * (s.amount::DOUBLE * b.weighting_factor)::DECIMAL(18,6))::DECIMAL(18,6)
                                                     AS revenue_allocated
FROM sales AS s
JOIN months AS m ON m.month_key = s.month_key
JOIN {{gold}}.dim_store AS ds ON ds.store_key = s.store_key
JOIN {{gold}}.bridge_film_category AS b ON b.film_key = s.film_key
JOIN {{gold}}.dim_category AS dc ON dc.category_key = b.category_key
GROUP BY ALL
ORDER BY month_start, s.store_key, b.category_key;
