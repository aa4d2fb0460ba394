-- bridge_film_category: many-to-many between films and categories.
-- Grain: one row per (film_key, category_key). Keys: film_key -> dim_film,
-- category_key -> dim_category. Source: silver stg_film_category, keymap_film, keymap_category.
-- weighting_factor = 1 / number of categories of the film. A film without category, and
-- the unknown film -1, get one row to category -1 with weight 1 so that joining a fact
-- through the bridge never loses rows.
-- Films marked deleted in dim_film (only after incremental builds) have no row.
-- incremental/bridge_film_category maintains the same rows in an incremental build.
CREATE OR REPLACE TABLE {{gold}}.bridge_film_category AS
WITH links AS (
    SELECT kf.film_key, kc.category_key
    FROM {{silver}}.stg_film_category AS fc
    JOIN {{silver}}.keymap_film AS kf ON kf.film_id = fc.film_id
    JOIN {{silver}}.keymap_category AS kc ON kc.category_id = fc.category_id
    WHERE fc.film_id IN (SELECT film_id FROM {{silver}}.stg_film)
      AND fc.category_id IN (SELECT category_id FROM {{silver}}.stg_category)
),
all_links AS (
    SELECT film_key, category_key FROM links
    UNION ALL
    SELECT d.film_key, -1
    FROM {{gold}}.dim_film AS d
    WHERE NOT d.is_deleted AND d.film_key NOT IN (SELECT film_key FROM links)
)
SELECT
    film_key,
    category_key,
    1.0::DOUBLE / count(*) OVER (PARTITION BY film_key) AS weighting_factor
FROM all_links
ORDER BY film_key, category_key;
