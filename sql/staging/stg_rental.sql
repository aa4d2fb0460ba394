-- stg_rental: rentals with the rented film and the store that owns the copy.
-- Grain: one row per rental. Key: rental_id.
-- Source: bronze rental, silver stg_inventory (LEFT JOIN: film_id/store_id NULL if the
-- inventory item is unknown).
-- Timestamps: rental_date/return_date are timestamptz in Postgres, converted to naive
-- TIMESTAMP in UTC via epoch microseconds. return_date NULL = not returned yet.
CREATE OR REPLACE TABLE {{silver}}.stg_rental AS
SELECT
    r.rental_id::INTEGER                      AS rental_id,
    make_timestamp(epoch_us(r.rental_date))   AS rental_date,
    make_timestamp(epoch_us(r.return_date))   AS return_date,
    r.inventory_id::INTEGER                   AS inventory_id,
    i.film_id                                 AS film_id,
    i.store_id                                AS store_id,
    r.customer_id::INTEGER                    AS customer_id,
    r.staff_id::INTEGER                       AS staff_id,
    make_timestamp(epoch_us(r.last_update))   AS last_update
FROM {{bronze}}.rental AS r
LEFT JOIN {{silver}}.stg_inventory AS i ON i.inventory_id = r.inventory_id;
