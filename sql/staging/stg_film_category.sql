-- stg_film_category: which categories a film belongs to.
-- Grain: one row per (film, category). Keys: film_id, category_id.
-- Source: bronze film_category, silver stg_category (name, NULL when the category is missing).
-- Note: in this Pagila release a film can belong to 1, 2 or 3 categories.
CREATE OR REPLACE TABLE {{silver}}.stg_film_category AS
SELECT DISTINCT
    fc.film_id::INTEGER      AS film_id,
    fc.category_id::INTEGER  AS category_id,
    c.category               AS category
FROM {{bronze}}.film_category AS fc
LEFT JOIN {{silver}}.stg_category AS c ON c.category_id = fc.category_id;
