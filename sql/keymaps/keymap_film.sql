-- keymap_film: persistent surrogate keys of the film entity. NEVER rebuilt, only appended.
-- Grain: one row per film_id ever seen by any build into this silver schema.
-- Keys: film_id (natural key, PRIMARY KEY), film_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_film.
-- Rule: a natural key seen for the first time gets max(film_key) + 1, new keys handed out
-- in ascending film_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: film_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while film_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_film (
    film_id     INTEGER NOT NULL PRIMARY KEY,
    film_key    INTEGER NOT NULL UNIQUE CHECK (film_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_film (film_id, film_key, first_run_id)
SELECT
    n.film_id,
    (SELECT coalesce(max(k.film_key), 0) FROM {{silver}}.keymap_film AS k)
        + row_number() OVER (ORDER BY n.film_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.film_id
    FROM {{silver}}.stg_film AS s
    WHERE s.film_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_film AS m WHERE m.film_id = s.film_id)
) AS n;
