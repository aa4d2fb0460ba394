-- stg_inventory: physical copies of films held by stores.
-- Grain: one row per inventory item. Key: inventory_id. Source: bronze inventory.
CREATE OR REPLACE TABLE {{silver}}.stg_inventory AS
SELECT
    i.inventory_id::INTEGER                  AS inventory_id,
    i.film_id::INTEGER                       AS film_id,
    i.store_id::INTEGER                      AS store_id,
    make_timestamp(epoch_us(i.last_update))  AS last_update
FROM {{bronze}}.inventory AS i;
