-- dim_store: stores with address, city, country and manager.
-- Grain: one row per store (current state, SCD type 1) plus the unknown member.
-- Keys: store_key (INTEGER surrogate from silver keymap_store, durable across rebuilds),
-- store_id (natural key, NULL for the unknown member). store_key -1 = unknown.
-- Source: silver stg_store, keymap_store.
-- SCD2 later: versions with valid_from, valid_to, is_current, store_key stays the durable key.
CREATE OR REPLACE TABLE {{gold}}.dim_store AS
SELECT
    k.store_key,
    s.store_id,
    s.address,
    s.address2,
    s.district,
    s.postal_code,
    s.phone,
    s.city,
    s.country,
    s.manager_staff_id,
    s.manager_name
FROM {{silver}}.stg_store AS s
JOIN {{silver}}.keymap_store AS k ON k.store_id = s.store_id
UNION ALL
SELECT -1, NULL, NULL, NULL, NULL, NULL, NULL, 'Unknown', 'Unknown', NULL, 'Unknown'
ORDER BY store_key;
