-- stg_film: incremental upsert of silver stg_film (see staging/stg_film for the rows).
-- Restages the films read in this run (temp pagila_delta_film, pagila_deleted_film), the films in
-- a language read in this run (temp pagila_delta_language, pagila_deleted_language) and the films
-- whose category links changed (temp pagila_chg_film_category: category, categories,
-- category_count are part of the row). Only rows that differ from the staged ones are replaced.
-- Leaves temp pagila_chg_film(film_id): films inserted, updated or deleted, and
-- temp pagila_chg_film_duration(film_id): the films among them whose rental_duration changed
-- (fact_rental.days_late depends on it).
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_film AS
SELECT film_id FROM temp.pagila_delta_film
UNION
SELECT film_id FROM temp.pagila_deleted_film
UNION
SELECT film_id FROM temp.pagila_chg_film_category
UNION
SELECT f.film_id FROM {{bronze}}.film AS f
WHERE f.language_id IN (SELECT language_id FROM temp.pagila_delta_language
                        UNION ALL
                        SELECT language_id FROM temp.pagila_deleted_language)
   OR f.original_language_id IN (SELECT language_id FROM temp.pagila_delta_language
                                 UNION ALL
                                 SELECT language_id FROM temp.pagila_deleted_language);

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_film AS
WITH cats AS (
    SELECT
        film_id,
        arg_min(category, category_id)      AS category,
        list_sort(list(category))           AS categories,
        count(*)::INTEGER                   AS category_count
    FROM {{silver}}.stg_film_category
    WHERE category IS NOT NULL
      AND film_id IN (SELECT film_id FROM temp.pagila_inc_keys_film)
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
LEFT JOIN cats ON cats.film_id = f.film_id
WHERE f.film_id IN (SELECT film_id FROM temp.pagila_inc_keys_film);

CREATE OR REPLACE TEMP TABLE pagila_inc_old_film AS
SELECT * FROM {{silver}}.stg_film
WHERE film_id IN (SELECT film_id FROM temp.pagila_inc_keys_film);

CREATE OR REPLACE TEMP TABLE pagila_chg_film AS
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.film_id, old_row.film_id) AS film_id
FROM temp.pagila_inc_stg_film AS new_row
FULL JOIN temp.pagila_inc_old_film AS old_row ON old_row.film_id = new_row.film_id
WHERE new_row IS DISTINCT FROM old_row;

CREATE OR REPLACE TEMP TABLE pagila_chg_film_duration AS
SELECT coalesce(n.film_id, o.film_id) AS film_id
FROM temp.pagila_inc_stg_film AS n
FULL OUTER JOIN temp.pagila_inc_old_film AS o ON o.film_id = n.film_id
WHERE n.rental_duration IS DISTINCT FROM o.rental_duration;

DELETE FROM {{silver}}.stg_film
WHERE film_id IN (SELECT film_id FROM temp.pagila_chg_film);

INSERT INTO {{silver}}.stg_film
SELECT * FROM temp.pagila_inc_stg_film
WHERE film_id IN (SELECT film_id FROM temp.pagila_chg_film);
