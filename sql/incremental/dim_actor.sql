-- dim_actor: incremental upsert of gold dim_actor (see dims/dim_actor for the columns).
-- The actors whose staged row changed (temp pagila_chg_actor) are replaced by their new row. An
-- actor that left the source (deleted) keeps the row and key, with is_deleted = true.
-- actor_key comes from silver keymap_actor (durable).
DELETE FROM {{gold}}.dim_actor
WHERE actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor)
  AND actor_id IN (SELECT actor_id FROM {{silver}}.stg_actor);

INSERT INTO {{gold}}.dim_actor
SELECT
    k.actor_key,
    a.actor_id,
    a.first_name,
    a.last_name,
    a.full_name,
    false AS is_deleted
FROM {{silver}}.stg_actor AS a
JOIN {{silver}}.keymap_actor AS k ON k.actor_id = a.actor_id
WHERE a.actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor)
ORDER BY k.actor_key;

UPDATE {{gold}}.dim_actor AS d
SET is_deleted = true
WHERE d.actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor)
  AND NOT d.is_deleted
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.stg_actor AS a WHERE a.actor_id = d.actor_id);
