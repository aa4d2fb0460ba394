-- check fact_rental_row_count: gold fact_rental holds as many rows as Postgres has rentals
-- (src_rental_count, read in the same snapshot). The cheap half of fact_rental_reconciles, for
-- incremental builds: rental_id stays unique there by construction (rows are replaced by key).
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
SELECT 'fact_rental_row_count' AS "check", CAST('{{src_rental_count}}' AS BIGINT)::VARCHAR AS expected,
       count(*)::VARCHAR AS actual, count(*) = CAST('{{src_rental_count}}' AS BIGINT) AS ok
FROM {{gold}}.fact_rental;
