-- stg_actor: incremental upsert of silver stg_actor (see staging/stg_actor).
-- Restages the actors read in this run (temp pagila_delta_actor, pagila_deleted_actor) and
-- replaces only the rows that differ from the staged ones.
-- Leaves temp pagila_chg_actor(actor_id): actors inserted, updated or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_actor AS
SELECT
    a.actor_id::INTEGER                                   AS actor_id,
    trim(a.first_name)                                    AS first_name,
    trim(a.last_name)                                     AS last_name,
    concat_ws(' ', trim(a.first_name), trim(a.last_name)) AS full_name,
    make_timestamp(epoch_us(a.last_update))               AS last_update
FROM temp.pagila_delta_actor AS a;

CREATE OR REPLACE TEMP TABLE pagila_chg_actor AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_actor
    WHERE actor_id IN (SELECT actor_id FROM temp.pagila_delta_actor
                       UNION ALL
                       SELECT actor_id FROM temp.pagila_deleted_actor)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.actor_id, old_row.actor_id) AS actor_id
FROM temp.pagila_inc_stg_actor AS new_row
FULL JOIN old AS old_row ON old_row.actor_id = new_row.actor_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_actor
WHERE actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor);

INSERT INTO {{silver}}.stg_actor
SELECT * FROM temp.pagila_inc_stg_actor
WHERE actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor);
