-- keymap_category: persistent surrogate keys of the category entity. NEVER rebuilt, only appended.
-- Grain: one row per category_id ever seen by any build into this silver schema.
-- Keys: category_id (natural key, PRIMARY KEY), category_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_category.
-- Rule: a natural key seen for the first time gets max(category_key) + 1, new keys handed out
-- in ascending category_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: category_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while category_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_category (
    category_id     INTEGER NOT NULL PRIMARY KEY,
    category_key    INTEGER NOT NULL UNIQUE CHECK (category_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_category (category_id, category_key, first_run_id)
SELECT
    n.category_id,
    (SELECT coalesce(max(k.category_key), 0) FROM {{silver}}.keymap_category AS k)
        + row_number() OVER (ORDER BY n.category_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.category_id
    FROM {{silver}}.stg_category AS s
    WHERE s.category_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_category AS m WHERE m.category_id = s.category_id)
) AS n;
