-- bridge_film_actor: many-to-many between films and actors.
-- Grain: one row per (film_key, actor_key). Keys: film_key -> dim_film, actor_key -> dim_actor.
-- Source: silver stg_film_actor, keymap_film, keymap_actor.
-- weighting_factor = 1 / number of actors in the film, so weighted measures add up to the
-- film's total. A film without actors, and the unknown film -1, get one row to actor -1
-- with weight 1 so that joining a fact through the bridge never loses rows.
-- Links to a film or actor that is missing from its dimension are dropped.
-- Films marked deleted in dim_film (only after incremental builds) have no row.
-- incremental/bridge_film_actor maintains the same rows in an incremental build.
CREATE OR REPLACE TABLE {{gold}}.bridge_film_actor AS
WITH links AS (
    SELECT kf.film_key, ka.actor_key
    FROM {{silver}}.stg_film_actor AS fa
    JOIN {{silver}}.keymap_film AS kf ON kf.film_id = fa.film_id
    JOIN {{silver}}.keymap_actor AS ka ON ka.actor_id = fa.actor_id
    WHERE fa.film_id IN (SELECT film_id FROM {{silver}}.stg_film)
      AND fa.actor_id IN (SELECT actor_id FROM {{silver}}.stg_actor)
),
all_links AS (
    SELECT film_key, actor_key FROM links
    UNION ALL
    SELECT d.film_key, -1
    FROM {{gold}}.dim_film AS d
    WHERE NOT d.is_deleted AND d.film_key NOT IN (SELECT film_key FROM links)
)
SELECT
    film_key,
    actor_key,
    1.0::DOUBLE / count(*) OVER (PARTITION BY film_key) AS weighting_factor
FROM all_links
ORDER BY film_key, actor_key;
