-- keymap_store: persistent surrogate keys of the store entity. NEVER rebuilt, only appended.
-- Grain: one row per store_id ever seen by any build into this silver schema.
-- Keys: store_id (natural key, PRIMARY KEY), store_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_store.
-- Rule: a natural key seen for the first time gets max(store_key) + 1, new keys handed out
-- in ascending store_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: store_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while store_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_store (
    store_id     INTEGER NOT NULL PRIMARY KEY,
    store_key    INTEGER NOT NULL UNIQUE CHECK (store_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_store (store_id, store_key, first_run_id)
SELECT
    n.store_id,
    (SELECT coalesce(max(k.store_key), 0) FROM {{silver}}.keymap_store AS k)
        + row_number() OVER (ORDER BY n.store_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.store_id
    FROM {{silver}}.stg_store AS s
    WHERE s.store_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_store AS m WHERE m.store_id = s.store_id)
) AS n;
