-- dim_category: film categories.
-- Grain: one row per category plus the unknown member.
-- Keys: category_key (INTEGER surrogate from silver keymap_category, durable across rebuilds),
-- category_id (natural key, NULL for the unknown member). category_key -1 = unknown.
-- Source: silver stg_category, keymap_category.
-- is_deleted: always false after a full build, which holds the source as it is. An incremental
-- build with detect_deletes keeps a member that left the source and sets it to true.
CREATE OR REPLACE TABLE {{gold}}.dim_category AS
SELECT
    k.category_key,
    c.category_id,
    c.category,
    false AS is_deleted
FROM {{silver}}.stg_category AS c
JOIN {{silver}}.keymap_category AS k ON k.category_id = c.category_id
UNION ALL
SELECT -1, NULL, 'Unknown', false
ORDER BY category_key;
