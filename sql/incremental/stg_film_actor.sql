-- stg_film_actor: incremental upsert of silver stg_film_actor (see staging/stg_film_actor).
-- Restages the links read in this run (temp pagila_delta_film_actor, pagila_deleted_film_actor)
-- and replaces only the rows that differ from the staged ones.
-- Leaves temp pagila_chg_film_actor(film_id, actor_id): links inserted or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_film_actor AS
SELECT film_id, actor_id FROM temp.pagila_delta_film_actor
UNION
SELECT film_id, actor_id FROM temp.pagila_deleted_film_actor;

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_film_actor AS
SELECT DISTINCT
    fa.film_id::INTEGER   AS film_id,
    fa.actor_id::INTEGER  AS actor_id
FROM {{bronze}}.film_actor AS fa
WHERE EXISTS (SELECT 1 FROM temp.pagila_inc_keys_film_actor AS k
              WHERE k.film_id = fa.film_id AND k.actor_id = fa.actor_id);

CREATE OR REPLACE TEMP TABLE pagila_chg_film_actor AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_film_actor AS s
    WHERE EXISTS (SELECT 1 FROM temp.pagila_inc_keys_film_actor AS k
                  WHERE k.film_id = s.film_id AND k.actor_id = s.actor_id)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.film_id, old_row.film_id) AS film_id,
       coalesce(new_row.actor_id, old_row.actor_id) AS actor_id
FROM temp.pagila_inc_stg_film_actor AS new_row
FULL JOIN old AS old_row ON old_row.film_id = new_row.film_id AND old_row.actor_id = new_row.actor_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_film_actor AS s
WHERE EXISTS (SELECT 1 FROM temp.pagila_chg_film_actor AS k
              WHERE k.film_id = s.film_id AND k.actor_id = s.actor_id);

INSERT INTO {{silver}}.stg_film_actor
SELECT * FROM temp.pagila_inc_stg_film_actor AS s
WHERE EXISTS (SELECT 1 FROM temp.pagila_chg_film_actor AS k
              WHERE k.film_id = s.film_id AND k.actor_id = s.actor_id);
