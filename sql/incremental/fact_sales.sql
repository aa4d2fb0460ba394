-- fact_sales: incremental upsert of gold fact_sales (see facts/fact_sales for the columns and
-- rules: the version lookup and the -1 fallbacks are the same).
-- Rebuilds the rows of these payments and only these:
--   payments inserted, updated or deleted (temp pagila_chg_payment, deletes are only removed),
--   payments of a rental that is new, gone, or has another film or store (temp pagila_chg_rental,
--   film_store_changed: a return changes neither),
--   payments of a customer, staff member or store whose SCD2 versions changed in this run
--   (temp pagila_scd_customer, pagila_scd_staff, pagila_scd_store), dated at or after the switch:
--   they now point at another version, and payments still pointing at -1 for an entity that
--   got its first version.
-- Leaves, for the marts: temp pagila_inc_old_fact_sales, the replaced and removed rows as they
-- were, and temp pagila_inc_new_fact_sales, the rows written (the columns mart_revenue_monthly sums).
-- Earliest switch of a version that existing facts may have to follow (NULL: none). A variable,
-- so the scans below skip every row group dated before it.
SET VARIABLE pagila_since_customer = (SELECT min(switch_at) FROM temp.pagila_scd_customer
                                      WHERE action <> 'open_first');
SET VARIABLE pagila_since_staff = (SELECT min(switch_at) FROM temp.pagila_scd_staff
                                   WHERE action <> 'open_first');
SET VARIABLE pagila_since_store = (SELECT min(switch_at) FROM temp.pagila_scd_store
                                   WHERE action <> 'open_first');

CREATE OR REPLACE TEMP TABLE pagila_inc_aff_payment AS
SELECT payment_id FROM temp.pagila_chg_payment
UNION
SELECT p.payment_id FROM {{silver}}.stg_payment AS p
WHERE p.rental_id IN (SELECT rental_id FROM temp.pagila_chg_rental WHERE film_store_changed)
UNION
SELECT p.payment_id FROM {{silver}}.stg_payment AS p
JOIN temp.pagila_scd_customer AS a
  ON a.customer_id = p.customer_id AND p.payment_date >= a.switch_at AND a.action <> 'open_first'
WHERE p.payment_date >= getvariable('pagila_since_customer')
UNION
SELECT p.payment_id FROM {{silver}}.stg_payment AS p
JOIN temp.pagila_scd_staff AS a
  ON a.staff_id = p.staff_id AND p.payment_date >= a.switch_at AND a.action <> 'open_first'
WHERE p.payment_date >= getvariable('pagila_since_staff')
UNION
SELECT p.payment_id FROM {{silver}}.stg_payment AS p
JOIN (SELECT r.rental_id, a.switch_at
      FROM {{silver}}.stg_rental AS r
      JOIN temp.pagila_scd_store AS a ON a.store_id = r.store_id AND a.action <> 'open_first') AS x
  ON x.rental_id = p.rental_id AND p.payment_date >= x.switch_at
WHERE p.payment_date >= getvariable('pagila_since_store')
UNION
-- An entity seen for the first time has had no version: its facts, if any, point at -1.
SELECT p.payment_id
FROM (SELECT payment_id, customer_id, staff_id, rental_id FROM {{silver}}.stg_payment
      WHERE payment_id IN (SELECT payment_id FROM {{gold}}.fact_sales
                           WHERE customer_key = -1 OR store_key = -1 OR staff_key = -1)) AS p
LEFT JOIN (SELECT rental_id, store_id FROM {{silver}}.stg_rental
           WHERE rental_id IN (SELECT rental_id FROM {{silver}}.stg_payment
                               WHERE payment_id IN (SELECT payment_id FROM {{gold}}.fact_sales
                                                    WHERE customer_key = -1 OR store_key = -1
                                                       OR staff_key = -1))) AS r
       ON r.rental_id = p.rental_id
WHERE p.customer_id IN (SELECT customer_id FROM temp.pagila_scd_customer WHERE action = 'open_first')
   OR p.staff_id IN (SELECT staff_id FROM temp.pagila_scd_staff WHERE action = 'open_first')
   OR r.store_id IN (SELECT store_id FROM temp.pagila_scd_store WHERE action = 'open_first');

CREATE OR REPLACE TEMP TABLE pagila_inc_old_fact_sales AS
SELECT date_key, store_key, film_key, amount FROM {{gold}}.fact_sales
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_inc_aff_payment);

DELETE FROM {{gold}}.fact_sales
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_inc_aff_payment);

-- The source rows of the fact rows rebuilt here, in a table of their own: the optimizer then
-- knows how few they are and builds its hash tables on them, not on the dimensions they
-- look up (as a CTE, it hashed all of dim_customer, 25 ms, even when there was nothing to do).
CREATE OR REPLACE TEMP TABLE pagila_inc_src_fact_sales AS
-- the payments stg_payment restaged in this run, as it staged them, and the others from
-- staging (a lookup in the 10M-row staging table reads every column of it)
SELECT * FROM temp.pagila_inc_stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_inc_aff_payment)
UNION ALL
SELECT * FROM {{silver}}.stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_inc_aff_payment
                     WHERE payment_id NOT IN (SELECT payment_id FROM temp.pagila_delta_payment));

CREATE OR REPLACE TEMP TABLE pagila_inc_new_fact_sales AS
WITH p AS (FROM temp.pagila_inc_src_fact_sales),
r AS (
    -- only what fact_sales takes from a rental
    SELECT rental_id, film_id, store_id FROM {{silver}}.stg_rental
    WHERE rental_id IN (SELECT rental_id FROM p)
),
-- the versions of the entities these payments reference, not whole dimensions
dc AS (
    SELECT customer_key, customer_id, valid_from, valid_to FROM {{gold}}.dim_customer
    WHERE customer_id IN (SELECT customer_id FROM p)
),
ds AS (
    SELECT store_key, store_id, valid_from, valid_to FROM {{gold}}.dim_store
    WHERE store_id IN (SELECT store_id FROM r)
),
dst AS (
    SELECT staff_key, staff_id, valid_from, valid_to FROM {{gold}}.dim_staff
    WHERE staff_id IN (SELECT staff_id FROM p)
)
SELECT
    p.payment_id,
    p.rental_id,
    coalesce(dd.date_key, -1)       AS date_key,
    coalesce(dc.customer_key, -1)   AS customer_key,
    coalesce(df.film_key, -1)       AS film_key,
    coalesce(ds.store_key, -1)      AS store_key,
    coalesce(dst.staff_key, -1)     AS staff_key,
    p.payment_date,
    p.amount
FROM p
LEFT JOIN r ON r.rental_id = p.rental_id
LEFT JOIN {{gold}}.dim_date AS dd
       ON dd.date = p.payment_date::DATE
LEFT JOIN dc
       ON dc.customer_id = p.customer_id
      AND dc.valid_from <= p.payment_date
      AND p.payment_date < coalesce(dc.valid_to, TIMESTAMP 'infinity')
LEFT JOIN {{gold}}.dim_film AS df ON df.film_id = r.film_id
LEFT JOIN ds
       ON ds.store_id = r.store_id
      AND ds.valid_from <= p.payment_date
      AND p.payment_date < coalesce(ds.valid_to, TIMESTAMP 'infinity')
LEFT JOIN dst
       ON dst.staff_id = p.staff_id
      AND dst.valid_from <= p.payment_date
      AND p.payment_date < coalesce(dst.valid_to, TIMESTAMP 'infinity')
ORDER BY p.payment_id;

INSERT INTO {{gold}}.fact_sales SELECT * FROM temp.pagila_inc_new_fact_sales;
