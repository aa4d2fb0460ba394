-- bridge_film_category: incremental upsert of gold bridge_film_category (see
-- dims/bridge_film_category). A film's rows (and its weights, 1 / its number of categories)
-- depend on its links, on whether the film and each of its categories exist. The rows of these
-- films are rebuilt: films whose links changed (temp pagila_chg_film_category), films inserted,
-- updated or deleted (temp pagila_chg_film), films linked to a category inserted, updated or
-- deleted (temp pagila_chg_category).
-- Leaves temp pagila_inc_films_category(film_id): those films (their revenue moves between
-- categories in mart_revenue_monthly).
CREATE OR REPLACE TEMP TABLE pagila_inc_films_category AS
SELECT film_id FROM temp.pagila_chg_film_category
UNION
SELECT film_id FROM temp.pagila_chg_film
UNION
SELECT fc.film_id FROM {{silver}}.stg_film_category AS fc
WHERE fc.category_id IN (SELECT category_id FROM temp.pagila_chg_category);

CREATE OR REPLACE TEMP TABLE pagila_inc_old_bridge_film_category AS
SELECT * FROM {{gold}}.bridge_film_category
WHERE film_key IN (SELECT kf.film_key FROM {{silver}}.keymap_film AS kf
                   WHERE kf.film_id IN (SELECT film_id FROM temp.pagila_inc_films_category));

DELETE FROM {{gold}}.bridge_film_category
WHERE film_key IN (SELECT film_key FROM temp.pagila_inc_old_bridge_film_category);

INSERT INTO {{gold}}.bridge_film_category
WITH links AS (
    SELECT kf.film_key, kc.category_key
    FROM {{silver}}.stg_film_category AS fc
    JOIN {{silver}}.keymap_film AS kf ON kf.film_id = fc.film_id
    JOIN {{silver}}.keymap_category AS kc ON kc.category_id = fc.category_id
    WHERE fc.film_id IN (SELECT film_id FROM temp.pagila_inc_films_category)
      AND fc.film_id IN (SELECT film_id FROM {{silver}}.stg_film)
      AND fc.category_id IN (SELECT category_id FROM {{silver}}.stg_category)
),
all_links AS (
    SELECT film_key, category_key FROM links
    UNION ALL
    SELECT d.film_key, -1
    FROM {{gold}}.dim_film AS d
    WHERE d.film_id IN (SELECT film_id FROM temp.pagila_inc_films_category)
      AND NOT d.is_deleted AND d.film_key NOT IN (SELECT film_key FROM links)
)
SELECT
    film_key,
    category_key,
    1.0::DOUBLE / count(*) OVER (PARTITION BY film_key) AS weighting_factor
FROM all_links
ORDER BY film_key, category_key;
