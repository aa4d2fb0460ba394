-- dim_film: incremental upsert of gold dim_film (see dims/dim_film for the columns).
-- The films whose staged row changed (temp pagila_chg_film: the film, its language or its
-- categories) are replaced by their new row. A film that left the source (deleted) keeps its row
-- and key, with is_deleted = true. film_key comes from silver keymap_film (durable).
DELETE FROM {{gold}}.dim_film
WHERE film_id IN (SELECT film_id FROM temp.pagila_chg_film)
  AND film_id IN (SELECT film_id FROM {{silver}}.stg_film);

INSERT INTO {{gold}}.dim_film
SELECT
    k.film_key,
    f.film_id,
    f.title,
    f.description,
    f.release_year,
    f.language,
    f.original_language,
    f.rental_duration,
    f.rental_rate,
    f.length,
    f.replacement_cost,
    f.rating,
    f.special_features,
    f.category,
    f.categories,
    f.category_count,
    false AS is_deleted
FROM {{silver}}.stg_film AS f
JOIN {{silver}}.keymap_film AS k ON k.film_id = f.film_id
WHERE f.film_id IN (SELECT film_id FROM temp.pagila_chg_film)
ORDER BY k.film_key;

UPDATE {{gold}}.dim_film AS d
SET is_deleted = true
WHERE d.film_id IN (SELECT film_id FROM temp.pagila_chg_film)
  AND NOT d.is_deleted
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.stg_film AS f WHERE f.film_id = d.film_id);
