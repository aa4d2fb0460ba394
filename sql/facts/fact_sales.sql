-- fact_sales: payments.
-- Grain: one row per payment (payment_id). Degenerate dimensions: payment_id, rental_id.
-- Keys: date_key -> dim_date (payment day, UTC, computed as dim_date's smart key yyyymmdd: dim_date
-- holds every payment day, which check fact_keys_resolve verifies), customer_key -> dim_customer (the paying
-- customer, payment.customer_id), staff_key -> dim_staff (the staff member who took the
-- payment), film_key -> dim_film and store_key -> dim_store through the paid rental's
-- inventory item (the store that owns the copy, as Pagila's sales_by_store does).
-- Every key is NOT NULL: anything that cannot be resolved (NULL or unknown rental, unknown
-- customer, staff, film or store) gets -1, so the row count always equals the source.
-- customer_key, store_key and staff_key point at the VERSION of the SCD2 dimension that was valid
-- at payment_date (valid_from <= payment_date < valid_to, valid_to NULL = open).
-- Measure: amount DECIMAL(5,2). payment_date is the payment's naive UTC TIMESTAMP.
-- Source: silver stg_payment, stg_rental, gold dim_date, dim_customer, dim_film, dim_store,
-- dim_staff. incremental/fact_sales maintains the same rows in an incremental build.
CREATE OR REPLACE TABLE {{gold}}.fact_sales AS
SELECT
    p.payment_id,
    p.rental_id,
    coalesce(CASE WHEN isfinite(p.payment_date)
                  THEN (year(p.payment_date) * 10000 + month(p.payment_date) * 100 + day(p.payment_date))::INTEGER
             END, -1)               AS date_key,
    coalesce(dc.customer_key, -1)   AS customer_key,
    coalesce(df.film_key, -1)       AS film_key,
    coalesce(ds.store_key, -1)      AS store_key,
    coalesce(dst.staff_key, -1)     AS staff_key,
    p.payment_date,
    p.amount
FROM {{silver}}.stg_payment AS p
LEFT JOIN {{silver}}.stg_rental AS r ON r.rental_id = p.rental_id
LEFT JOIN {{gold}}.dim_customer AS dc
       ON dc.customer_id = p.customer_id
      AND dc.valid_from <= p.payment_date
      AND p.payment_date < coalesce(dc.valid_to, TIMESTAMP 'infinity')
LEFT JOIN {{gold}}.dim_film AS df ON df.film_id = r.film_id
LEFT JOIN {{gold}}.dim_store AS ds
       ON ds.store_id = r.store_id
      AND ds.valid_from <= p.payment_date
      AND p.payment_date < coalesce(ds.valid_to, TIMESTAMP 'infinity')
LEFT JOIN {{gold}}.dim_staff AS dst
       ON dst.staff_id = p.staff_id
      AND dst.valid_from <= p.payment_date
      AND p.payment_date < coalesce(dst.valid_to, TIMESTAMP 'infinity');
