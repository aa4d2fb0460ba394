-- mart_store_rentals: incremental maintenance of gold mart_store_rentals (see
-- marts/mart_store_rentals for the columns). Every measure is additive, so the rows are updated
-- by the difference between the fact_rental rows this run wrote (temp pagila_inc_new_fact_rental)
-- and the rows they replaced or removed (temp pagila_inc_old_fact_rental), without reading the
-- fact. A store version whose last rental went away loses its row. avg_rental_hours is
-- recomputed from rental_hours_total / returns, and the dim_store attributes are refreshed on
-- every row (a store's overwritten attributes change all versions).
CREATE OR REPLACE TEMP TABLE pagila_inc_delta_store_rentals AS
SELECT
    store_key,
    sum(sign)::BIGINT                                                  AS rentals,
    sum(sign) FILTER (WHERE is_returned)::BIGINT                       AS returns,
    sum(sign) FILTER (WHERE NOT is_returned)::BIGINT                   AS open_rentals,
    sum(sign) FILTER (WHERE days_late > 0)::BIGINT                     AS late_returns,
    sum(sign * payment_total)::DECIMAL(18,2)                           AS payment_total,
    coalesce(sum(sign * rental_hours), 0)::DECIMAL(38,6)               AS rental_hours_total
FROM (
    SELECT 1 AS sign, store_key, is_returned, days_late, payment_total, rental_hours
    FROM temp.pagila_inc_new_fact_rental
    UNION ALL
    SELECT -1, store_key, is_returned, days_late, payment_total, rental_hours
    FROM temp.pagila_inc_old_fact_rental
) AS d
GROUP BY store_key;

UPDATE {{gold}}.mart_store_rentals AS m
SET rentals = m.rentals + d.rentals,
    returns = m.returns + coalesce(d.returns, 0),
    open_rentals = m.open_rentals + coalesce(d.open_rentals, 0),
    late_returns = m.late_returns + coalesce(d.late_returns, 0),
    payment_total = m.payment_total + d.payment_total,
    rental_hours_total = m.rental_hours_total + d.rental_hours_total
FROM temp.pagila_inc_delta_store_rentals AS d
WHERE m.store_key = d.store_key;

INSERT INTO {{gold}}.mart_store_rentals BY NAME
SELECT
    d.store_key,
    d.rentals,
    coalesce(d.returns, 0)       AS returns,
    coalesce(d.open_rentals, 0)  AS open_rentals,
    coalesce(d.late_returns, 0)  AS late_returns,
    d.payment_total,
    d.rental_hours_total
FROM temp.pagila_inc_delta_store_rentals AS d
WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.mart_store_rentals AS m WHERE m.store_key = d.store_key)
  AND EXISTS (SELECT 1 FROM {{gold}}.dim_store AS ds WHERE ds.store_key = d.store_key)
  AND d.rentals > 0;

DELETE FROM {{gold}}.mart_store_rentals WHERE rentals = 0;

UPDATE {{gold}}.mart_store_rentals AS m
SET store_id = ds.store_id,
    city = ds.city,
    country = ds.country,
    manager_name = ds.manager_name,
    avg_rental_hours = CASE WHEN m.returns > 0 THEN (m.rental_hours_total / m.returns)::DECIMAL(18,2) END
FROM {{gold}}.dim_store AS ds
WHERE ds.store_key = m.store_key
  AND (row(m.store_id, m.city, m.country, m.manager_name)
           IS DISTINCT FROM row(ds.store_id, ds.city, ds.country, ds.manager_name)
       OR m.store_key IN (SELECT store_key FROM temp.pagila_inc_delta_store_rentals));
