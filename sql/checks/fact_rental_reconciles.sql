-- check fact_rental_reconciles: gold fact_rental holds every source rental exactly once.
-- Compares the row count with src_rental_count read from Postgres in the same snapshot, and
-- checks rental_id is unique in the fact.
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH src AS (
    SELECT CAST('{{src_rental_count}}' AS BIGINT) AS n
),
gold AS (
    SELECT count(*)::BIGINT AS n, count(DISTINCT rental_id)::BIGINT AS n_distinct
    FROM {{gold}}.fact_rental
)
SELECT 'fact_rental_row_count' AS "check", src.n::VARCHAR AS expected, gold.n::VARCHAR AS actual,
       src.n = gold.n AS ok
FROM src, gold
UNION ALL
SELECT 'fact_rental_rental_id_unique', gold.n::VARCHAR, gold.n_distinct::VARCHAR, gold.n = gold.n_distinct
FROM gold;
