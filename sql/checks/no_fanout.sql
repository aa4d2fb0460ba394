-- check no_fanout: attaching payments to rentals did not duplicate or lose money.
-- sum(payment_total) and sum(payment_count) over gold fact_rental must equal the total and
-- count of silver payments whose rental_id names an existing rental. Also every film's
-- bridge weights add up to 1.
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH expected AS (
    SELECT count(*)::BIGINT AS n, coalesce(sum(p.amount), 0)::DECIMAL(38,2) AS total
    FROM {{silver}}.stg_payment AS p
    SEMI JOIN {{silver}}.stg_rental AS r ON r.rental_id = p.rental_id
),
actual AS (
    SELECT coalesce(sum(payment_count), 0)::BIGINT AS n,
           coalesce(sum(payment_total), 0)::DECIMAL(38,2) AS total
    FROM {{gold}}.fact_rental
),
bad_weights AS (
    SELECT 'bridge_film_actor' AS bridge, count(*) AS n FROM (
        SELECT film_key FROM {{gold}}.bridge_film_actor GROUP BY film_key
        HAVING abs(sum(weighting_factor) - 1.0) > 1e-9
    ) AS a
    UNION ALL
    SELECT 'bridge_film_category', count(*) FROM (
        SELECT film_key FROM {{gold}}.bridge_film_category GROUP BY film_key
        HAVING abs(sum(weighting_factor) - 1.0) > 1e-9
    ) AS c
)
SELECT 'no_fanout:fact_rental.payment_total' AS "check", e.total::VARCHAR AS expected,
       a.total::VARCHAR AS actual, e.total = a.total AS ok
FROM expected AS e, actual AS a
UNION ALL
SELECT 'no_fanout:fact_rental.payment_count', e.n::VARCHAR, a.n::VARCHAR, e.n = a.n
FROM expected AS e, actual AS a
UNION ALL
SELECT 'weights_sum_to_one:' || bridge, '0', n::VARCHAR, n = 0
FROM bad_weights;
