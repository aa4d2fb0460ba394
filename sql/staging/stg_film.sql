-- stg_film: films with language, original language and categories.
-- Grain: one row per film. Key: film_id.
-- Source: bronze film, bronze language (twice), silver stg_film_category.
-- language names are char(20) in Postgres and arrive blank-padded: trimmed here.
-- rating: the mpaa_rating ENUM is conformed to VARCHAR ('G','PG','PG-13','R','NC-17').
-- Categories: a film may have several. category = the primary category, defined as the
-- one with the lowest category_id (deterministic), categories = all names sorted, and
-- category_count. Revenue per category goes through gold bridge_film_category instead.
CREATE OR REPLACE TABLE {{silver}}.stg_film AS
WITH cats AS (
    SELECT
        film_id,
        arg_min(category, category_id)      AS category,
        list_sort(list(category))           AS categories,
        count(*)::INTEGER                   AS category_count
    FROM {{silver}}.stg_film_category
    WHERE category IS NOT NULL
    GROUP BY film_id
)
SELECT
    f.film_id::INTEGER                          AS film_id,
    trim(f.title)                               AS title,
    nullif(trim(f.description), '')             AS description,
    f.release_year::INTEGER                     AS release_year,
    f.language_id::INTEGER                      AS language_id,
    trim(l.name)                                AS language,
    f.original_language_id::INTEGER             AS original_language_id,
    trim(ol.name)                               AS original_language,
    f.rental_duration::SMALLINT                 AS rental_duration,
    f.rental_rate::DECIMAL(4,2)                 AS rental_rate,
    f.length::SMALLINT                          AS length,
    f.replacement_cost::DECIMAL(5,2)            AS replacement_cost,
    f.rating::VARCHAR                           AS rating,
    f.special_features::VARCHAR[]               AS special_features,
    cats.category                               AS category,
    coalesce(cats.categories, []::VARCHAR[])    AS categories,
    coalesce(cats.category_count, 0)            AS category_count,
    make_timestamp(epoch_us(f.last_update))     AS last_update
FROM {{bronze}}.film AS f
LEFT JOIN {{bronze}}.language AS l ON l.language_id = f.language_id
LEFT JOIN {{bronze}}.language AS ol ON ol.language_id = f.original_language_id
LEFT JOIN cats ON cats.film_id = f.film_id;
