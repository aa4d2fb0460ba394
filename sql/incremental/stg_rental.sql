-- stg_rental: incremental upsert of silver stg_rental (see staging/stg_rental for the rows).
-- Restages the rentals read in this run (temp pagila_delta_rental, pagila_deleted_rental) and the
-- rentals of copies whose staged row changed (temp pagila_chg_inventory: film_id and store_id come
-- from the copy). Only rows that differ from the staged ones are replaced: a rental read again by
-- the lookback window but unchanged is not in the delta (bronze left it alone) and stays as it is.
-- Leaves temp pagila_chg_rental(rental_id, film_store_changed): rentals inserted, updated or
-- deleted, with film_store_changed when the rental is new, gone, or has another film or store (a
-- return changes neither).
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_rental AS
SELECT rental_id FROM temp.pagila_delta_rental
UNION
SELECT rental_id FROM temp.pagila_deleted_rental
UNION
SELECT r.rental_id FROM {{bronze}}.rental AS r
WHERE r.inventory_id IN (SELECT inventory_id FROM temp.pagila_chg_inventory);

-- The rentals to restage, in a table of their own so that the optimizer knows how few they
-- are and hashes them, not the 2.9M copies they look up.
CREATE OR REPLACE TEMP TABLE pagila_inc_src_stg_rental AS
-- the rentals read in this run, as bronze now holds them (looking them up in the 10M-row
-- bronze table would read every column of it)
SELECT rental_id, rental_date, return_date, inventory_id, customer_id, staff_id, last_update
FROM temp.pagila_delta_rental
UNION ALL
-- the rentals of copies whose staged row changed that were not read
SELECT rental_id, rental_date, return_date, inventory_id, customer_id, staff_id, last_update
FROM {{bronze}}.rental
WHERE inventory_id IN (SELECT inventory_id FROM temp.pagila_chg_inventory)
  AND rental_id NOT IN (SELECT rental_id FROM temp.pagila_delta_rental);

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_rental AS
WITH r AS (FROM temp.pagila_inc_src_stg_rental),
i AS (
    -- only the copies of these rentals (joining the whole inventory would cost a full scan)
    SELECT * FROM {{silver}}.stg_inventory
    WHERE inventory_id IN (SELECT inventory_id FROM r)
)
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
FROM r
LEFT JOIN i ON i.inventory_id = r.inventory_id;

CREATE OR REPLACE TEMP TABLE pagila_chg_rental AS
WITH old AS (
    -- A rental in the delta changed in bronze, and every bronze column of a rental is staged, so
    -- its staged row changes too. Any other rental here can only have another film or store (its
    -- copy's), so only those columns are read back (each column costs a scan of 10M rows).
    SELECT rental_id, film_id, store_id FROM {{silver}}.stg_rental
    WHERE rental_id IN (SELECT rental_id FROM temp.pagila_inc_keys_rental)
)
SELECT
    coalesce(n.rental_id, o.rental_id) AS rental_id,
    -- what fact_sales takes from a rental: that it exists, its film and its store
    n.rental_id IS NULL OR o.rental_id IS NULL
        OR n.film_id IS DISTINCT FROM o.film_id OR n.store_id IS DISTINCT FROM o.store_id
                                       AS film_store_changed
FROM temp.pagila_inc_stg_rental AS n
FULL OUTER JOIN old AS o ON o.rental_id = n.rental_id
WHERE n.rental_id IS NULL OR o.rental_id IS NULL
   OR n.rental_id IN (SELECT rental_id FROM temp.pagila_delta_rental)
   OR n.film_id IS DISTINCT FROM o.film_id OR n.store_id IS DISTINCT FROM o.store_id;

DELETE FROM {{silver}}.stg_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_chg_rental);

INSERT INTO {{silver}}.stg_rental
SELECT * FROM temp.pagila_inc_stg_rental
WHERE rental_id IN (SELECT rental_id FROM temp.pagila_chg_rental);
