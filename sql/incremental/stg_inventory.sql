-- stg_inventory: incremental upsert of silver stg_inventory (see staging/stg_inventory).
-- Restages the copies read in this run (temp pagila_delta_inventory, pagila_deleted_inventory)
-- and replaces only the rows that differ from the staged ones.
-- Leaves temp pagila_chg_inventory(inventory_id): copies inserted, updated or deleted (their
-- rentals take the copy's film and store in stg_rental).
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_inventory AS
SELECT
    i.inventory_id::INTEGER                  AS inventory_id,
    i.film_id::INTEGER                       AS film_id,
    i.store_id::INTEGER                      AS store_id,
    make_timestamp(epoch_us(i.last_update))  AS last_update
FROM temp.pagila_delta_inventory AS i;

CREATE OR REPLACE TEMP TABLE pagila_chg_inventory AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_inventory
    WHERE inventory_id IN (SELECT inventory_id FROM temp.pagila_delta_inventory
                           UNION ALL
                           SELECT inventory_id FROM temp.pagila_deleted_inventory)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.inventory_id, old_row.inventory_id) AS inventory_id
FROM temp.pagila_inc_stg_inventory AS new_row
FULL JOIN old AS old_row ON old_row.inventory_id = new_row.inventory_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_inventory
WHERE inventory_id IN (SELECT inventory_id FROM temp.pagila_chg_inventory);

INSERT INTO {{silver}}.stg_inventory
SELECT * FROM temp.pagila_inc_stg_inventory
WHERE inventory_id IN (SELECT inventory_id FROM temp.pagila_chg_inventory);
