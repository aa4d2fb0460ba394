-- bridge_film_actor: incremental upsert of gold bridge_film_actor (see dims/bridge_film_actor).
-- A film's rows (and its weights, 1 / its number of actors) depend on its links, on whether the
-- film and each of its actors exist. The rows of these films are rebuilt:
--   films whose links changed (temp pagila_chg_film_actor), films inserted, updated or deleted
--   (temp pagila_chg_film), films linked to an actor inserted, updated or deleted (temp
--   pagila_chg_actor).
CREATE OR REPLACE TEMP TABLE pagila_inc_films_actor AS
SELECT film_id FROM temp.pagila_chg_film_actor
UNION
SELECT film_id FROM temp.pagila_chg_film
UNION
SELECT fa.film_id FROM {{silver}}.stg_film_actor AS fa
WHERE fa.actor_id IN (SELECT actor_id FROM temp.pagila_chg_actor);

DELETE FROM {{gold}}.bridge_film_actor
WHERE film_key IN (SELECT kf.film_key FROM {{silver}}.keymap_film AS kf
                   WHERE kf.film_id IN (SELECT film_id FROM temp.pagila_inc_films_actor));

INSERT INTO {{gold}}.bridge_film_actor
WITH links AS (
    SELECT kf.film_key, ka.actor_key
    FROM {{silver}}.stg_film_actor AS fa
    JOIN {{silver}}.keymap_film AS kf ON kf.film_id = fa.film_id
    JOIN {{silver}}.keymap_actor AS ka ON ka.actor_id = fa.actor_id
    WHERE fa.film_id IN (SELECT film_id FROM temp.pagila_inc_films_actor)
      AND fa.film_id IN (SELECT film_id FROM {{silver}}.stg_film)
      AND fa.actor_id IN (SELECT actor_id FROM {{silver}}.stg_actor)
),
all_links AS (
    SELECT film_key, actor_key FROM links
    UNION ALL
    SELECT d.film_key, -1
    FROM {{gold}}.dim_film AS d
    WHERE d.film_id IN (SELECT film_id FROM temp.pagila_inc_films_actor)
      AND NOT d.is_deleted AND d.film_key NOT IN (SELECT film_key FROM links)
)
SELECT
    film_key,
    actor_key,
    1.0::DOUBLE / count(*) OVER (PARTITION BY film_key) AS weighting_factor
FROM all_links
ORDER BY film_key, actor_key;
