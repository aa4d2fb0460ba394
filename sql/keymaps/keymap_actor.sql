-- keymap_actor: persistent surrogate keys of the actor entity. NEVER rebuilt, only appended.
-- Grain: one row per actor_id ever seen by any build into this silver schema.
-- Keys: actor_id (natural key, PRIMARY KEY), actor_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_actor.
-- Rule: a natural key seen for the first time gets max(actor_key) + 1, new keys handed out
-- in ascending actor_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: actor_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while actor_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_actor (
    actor_id     INTEGER NOT NULL PRIMARY KEY,
    actor_key    INTEGER NOT NULL UNIQUE CHECK (actor_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_actor (actor_id, actor_key, first_run_id)
SELECT
    n.actor_id,
    (SELECT coalesce(max(k.actor_key), 0) FROM {{silver}}.keymap_actor AS k)
        + row_number() OVER (ORDER BY n.actor_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.actor_id
    FROM {{silver}}.stg_actor AS s
    WHERE s.actor_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_actor AS m WHERE m.actor_id = s.actor_id)
) AS n;
