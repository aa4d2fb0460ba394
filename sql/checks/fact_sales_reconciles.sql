-- check fact_sales_reconciles: gold fact_sales holds every source payment exactly once.
-- Compares the row count and sum(amount) with the figures the orchestrator read from
-- Postgres in the same snapshot (src_payment_count, src_payment_sum: plain decimal text,
-- sum given as 0 for an empty table).
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH src AS (
    SELECT CAST('{{src_payment_count}}' AS BIGINT)         AS n,
           CAST('{{src_payment_sum}}' AS DECIMAL(38,2))    AS total
),
gold AS (
    SELECT count(*)::BIGINT AS n, coalesce(sum(amount), 0)::DECIMAL(38,2) AS total
    FROM {{gold}}.fact_sales
)
SELECT 'fact_sales_row_count' AS "check", src.n::VARCHAR AS expected, gold.n::VARCHAR AS actual,
       src.n = gold.n AS ok
FROM src, gold
UNION ALL
SELECT 'fact_sales_amount_sum', src.total::VARCHAR, gold.total::VARCHAR, src.total = gold.total
FROM src, gold;
