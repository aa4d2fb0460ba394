-- dim_actor: actors.
-- Grain: one row per actor plus the unknown member.
-- Keys: actor_key (INTEGER surrogate from silver keymap_actor, durable across rebuilds),
-- actor_id (natural key, NULL for the unknown member). actor_key -1 = unknown.
-- Source: silver stg_actor, keymap_actor.
-- is_deleted: always false after a full build, which holds the source as it is. An incremental
-- build with detect_deletes keeps a member that left the source and sets it to true.
CREATE OR REPLACE TABLE {{gold}}.dim_actor AS
SELECT
    k.actor_key,
    a.actor_id,
    a.first_name,
    a.last_name,
    a.full_name,
    false AS is_deleted
FROM {{silver}}.stg_actor AS a
JOIN {{silver}}.keymap_actor AS k ON k.actor_id = a.actor_id
UNION ALL
SELECT -1, NULL, 'Unknown', 'Unknown', 'Unknown', false
ORDER BY actor_key;
