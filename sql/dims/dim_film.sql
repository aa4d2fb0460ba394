-- dim_film: films with language, original language and category.
-- Grain: one row per film plus the unknown member.
-- Keys: film_key (INTEGER surrogate from silver keymap_film, durable across rebuilds),
-- film_id (natural key, NULL for the unknown member). film_key -1 = unknown.
-- Source: silver stg_film, keymap_film.
-- category is the film's primary category (lowest category_id), categories lists all of
-- them: a Pagila film can have up to 3. Use bridge_film_category to analyse by category.
-- rating is VARCHAR ('G','PG','PG-13','R','NC-17').
-- is_deleted: always false after a full build, which holds the source as it is. An incremental
-- build with detect_deletes keeps a member that left the source and sets it to true.
CREATE OR REPLACE TABLE {{gold}}.dim_film AS
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
UNION ALL
SELECT -1, NULL, 'Unknown', NULL, NULL, 'Unknown', NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, 'Unknown', []::VARCHAR[], 0, false
ORDER BY film_key;
