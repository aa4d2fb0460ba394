-- stg_film_actor: cast of each film.
-- Grain: one row per (film, actor). Keys: film_id, actor_id. Source: bronze film_actor.
CREATE OR REPLACE TABLE {{silver}}.stg_film_actor AS
SELECT DISTINCT
    fa.film_id::INTEGER   AS film_id,
    fa.actor_id::INTEGER  AS actor_id
FROM {{bronze}}.film_actor AS fa;
