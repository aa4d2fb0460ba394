-- dim_staff: staff members with their store and address.
-- Grain: one row per staff member (current state, SCD type 1) plus the unknown member.
-- Keys: staff_key (INTEGER surrogate from silver keymap_staff, durable across rebuilds),
-- staff_id (natural key, NULL for the unknown member). staff_key -1 = unknown.
-- Source: silver stg_staff, stg_address, keymap_staff. No password, no picture.
-- SCD2 later: versions with valid_from, valid_to, is_current, staff_key stays the durable key.
CREATE OR REPLACE TABLE {{gold}}.dim_staff AS
SELECT
    k.staff_key,
    s.staff_id,
    s.first_name,
    s.last_name,
    s.full_name,
    s.email,
    s.username,
    s.active,
    s.store_id,
    a.city,
    a.country
FROM {{silver}}.stg_staff AS s
JOIN {{silver}}.keymap_staff AS k ON k.staff_id = s.staff_id
LEFT JOIN {{silver}}.stg_address AS a ON a.address_id = s.address_id
UNION ALL
SELECT -1, NULL, 'Unknown', 'Unknown', 'Unknown', NULL, NULL, NULL, NULL, 'Unknown', 'Unknown'
ORDER BY staff_key;
