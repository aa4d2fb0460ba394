-- fact_rental: incremental upsert of gold fact_rental (see facts/fact_rental for the columns and
-- rules: the version lookup, days_late and the payment aggregates are the same).
-- Rebuilds the rows of these rentals and only these:
--   rentals inserted, updated (e.g. returned) or deleted (temp pagila_chg_rental, deletes are
--   only removed),
--   rentals whose payments changed, before or after the change (temp pagila_chg_payment_rental:
--   payment_count, payment_total),
--   rentals of films whose rental_duration changed (temp pagila_chg_film_duration: days_late),
--   rentals of a customer, staff member or store whose SCD2 versions changed in this run
--   (temp pagila_scd_customer, pagila_scd_staff, pagila_scd_store), dated at or after the switch:
--   they now point at another version, and rentals still pointing at -1 for an entity that got
--   its first version.
-- Leaves, for the marts: temp pagila_inc_old_fact_rental, the replaced and removed rows as they
-- were, and temp pagila_inc_new_fact_rental, the rows written (the columns mart_store_rentals sums).
-- Earliest switch of a version that existing facts may have to follow (NULL: none). A variable,
-- so the scans below skip every row group dated before it.
SET VARIABLE pagila_since_customer = (SELECT min(switch_at) FROM temp.pagila_scd_customer
                                      WHERE action <> 'open_first');
SET VARIABLE pagila_since_staff = (SELECT min(switch_at) FROM temp.pagila_scd_staff
                                   WHERE action <> 'open_first');
SET VARIABLE pagila_since_store = (SELECT min(switch_at) FROM temp.pagila_scd_store
                                   WHERE action <> 'open_first');

CREATE OR REPLACE TEMP TABLE pagila_inc_aff_rental AS
SELECT rental_id FROM temp.pagila_chg_rental
UNION
SELECT rental_id FROM temp.pagila_chg_payment_rental
UNION
SELECT r.rental_id FROM {{silver}}.stg_rental AS r
WHERE r.film_id IN (SELECT film_id FROM temp.pagila_chg_film_duration)
UNION
SELECT r.rental_id FROM {{silver}}.stg_rental AS r
JOIN temp.pagila_scd_customer AS a
  ON a.customer_id = r.customer_id AND r.rental_date >= a.switch_at AND a.action <> 'open_first'
WHERE r.rental_date >= getvariable('pagila_since_customer')
UNION
SELECT r.rental_id FROM {{silver}}.stg_rental AS r
JOIN temp.pagila_scd_staff AS a
  ON a.staff_id = r.staff_id AND r.rental_date >= a.switch_at AND a.action <> 'open_first'
WHERE r.rental_date >= getvariable('pagila_since_staff')
UNION
SELECT r.rental_id FROM {{silver}}.stg_rental AS r
JOIN temp.pagila_scd_store AS a
  ON a.store_id = r.store_id AND r.rental_date >= a.switch_at AND a.action <> 'open_first'
WHERE r.rental_date >= getvariable('pagila_since_store')
UNION
-- An entity seen for the first time has had no version: its facts, if any, point at -1.
SELECT f.rental_id
FROM (SELECT rental_id FROM {{gold}}.fact_rental
      WHERE customer_key = -1 OR store_key = -1 OR staff_key = -1) AS f
JOIN {{silver}}.stg_rental AS r ON r.rental_id = f.rental_id
WHERE r.customer_id IN (SELECT customer_id FROM temp.pagila_scd_customer WHERE action = 'open_first')
   OR r.staff_id IN (SELECT staff_id FROM temp.pagila_scd_staff WHERE action = 'open_first')
   OR r.store_id IN (SELECT store_id FROM temp.pagila_scd_store WHERE action = 'open_first');

CREATE OR REPLACE TEMP TABLE pagila_inc_old_fact_rental AS
SELECT store_key, is_returned, days_late, payment_total, rental_hours FROM {{gold}}.fact_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_inc_aff_rental);

DELETE FROM {{gold}}.fact_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_inc_aff_rental);

-- The source rows of the fact rows rebuilt here, in a table of their own: the optimizer then
-- knows how few they are and builds its hash tables on them, not on the dimensions they
-- look up (as a CTE, it hashed all of dim_customer, 25 ms, even when there was nothing to do).
CREATE OR REPLACE TEMP TABLE pagila_inc_src_fact_rental AS
-- the rentals stg_rental restaged in this run, as it staged them (looking them up in the
-- 10M-row staging table would read every column of it), and the others from staging
SELECT * FROM temp.pagila_inc_stg_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_inc_aff_rental)
UNION ALL
SELECT * FROM {{silver}}.stg_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_inc_aff_rental
                    WHERE rental_id NOT IN (SELECT rental_id FROM temp.pagila_inc_keys_rental));

CREATE OR REPLACE TEMP TABLE pagila_inc_new_fact_rental AS
WITH r AS (FROM temp.pagila_inc_src_fact_rental),
paid AS (
    SELECT
        rental_id,
        count(*)::INTEGER             AS payment_count,
        sum(amount)::DECIMAL(18,2)    AS payment_total
    FROM {{silver}}.stg_payment
    WHERE rental_id IN (SELECT rental_id FROM r)
    GROUP BY rental_id
),
-- the versions of the entities these rentals reference, not whole dimensions
dc AS (
    SELECT customer_key, customer_id, valid_from, valid_to FROM {{gold}}.dim_customer
    WHERE customer_id IN (SELECT customer_id FROM r)
),
ds AS (
    SELECT store_key, store_id, valid_from, valid_to FROM {{gold}}.dim_store
    WHERE store_id IN (SELECT store_id FROM r)
),
dst AS (
    SELECT staff_key, staff_id, valid_from, valid_to FROM {{gold}}.dim_staff
    WHERE staff_id IN (SELECT staff_id FROM r)
)
SELECT
    r.rental_id,
    coalesce(drd.date_key, -1)      AS rental_date_key,
    coalesce(dret.date_key, -1)     AS return_date_key,
    coalesce(dc.customer_key, -1)   AS customer_key,
    coalesce(df.film_key, -1)       AS film_key,
    coalesce(ds.store_key, -1)      AS store_key,
    coalesce(dst.staff_key, -1)     AS staff_key,
    r.rental_date,
    r.return_date,
    r.return_date IS NOT NULL       AS is_returned,
    ((epoch_us(r.return_date) - epoch_us(r.rental_date)) / 3600000000.0)::DECIMAL(18,6)
                                    AS rental_hours,
    CASE WHEN r.return_date IS NOT NULL AND f.rental_duration IS NOT NULL
         THEN greatest(0, (r.return_date::DATE - r.rental_date::DATE) - f.rental_duration)::INTEGER
    END                             AS days_late,
    coalesce(paid.payment_count, 0) AS payment_count,
    coalesce(paid.payment_total, 0)::DECIMAL(18,2) AS payment_total
FROM r
LEFT JOIN paid ON paid.rental_id = r.rental_id
LEFT JOIN {{silver}}.stg_film AS f ON f.film_id = r.film_id
LEFT JOIN {{gold}}.dim_date AS drd ON drd.date = r.rental_date::DATE
LEFT JOIN {{gold}}.dim_date AS dret ON dret.date = r.return_date::DATE
LEFT JOIN dc
       ON dc.customer_id = r.customer_id
      AND dc.valid_from <= r.rental_date
      AND r.rental_date < coalesce(dc.valid_to, TIMESTAMP 'infinity')
LEFT JOIN {{gold}}.dim_film AS df ON df.film_id = r.film_id
LEFT JOIN ds
       ON ds.store_id = r.store_id
      AND ds.valid_from <= r.rental_date
      AND r.rental_date < coalesce(ds.valid_to, TIMESTAMP 'infinity')
LEFT JOIN dst
       ON dst.staff_id = r.staff_id
      AND dst.valid_from <= r.rental_date
      AND r.rental_date < coalesce(dst.valid_to, TIMESTAMP 'infinity')
ORDER BY r.rental_id;

INSERT INTO {{gold}}.fact_rental SELECT * FROM temp.pagila_inc_new_fact_rental;
