-- stg_film_category: incremental upsert of silver stg_film_category (see staging/stg_film_category).
-- Restages the links read in this run (temp pagila_delta_film_category, pagila_deleted_film_category)
-- and the links of categories whose staged row changed (temp pagila_chg_category: the category name
-- is part of the row). Only rows that differ from the staged ones are replaced.
-- Leaves temp pagila_chg_film_category(film_id, category_id): links inserted, updated or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_film_category AS
SELECT film_id, category_id FROM temp.pagila_delta_film_category
UNION
SELECT film_id, category_id FROM temp.pagila_deleted_film_category
UNION
SELECT fc.film_id, fc.category_id FROM {{bronze}}.film_category AS fc
WHERE fc.category_id IN (SELECT category_id FROM temp.pagila_chg_category);

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_film_category AS
SELECT DISTINCT
    fc.film_id::INTEGER      AS film_id,
    fc.category_id::INTEGER  AS category_id,
    c.category               AS category
FROM {{bronze}}.film_category AS fc
LEFT JOIN {{silver}}.stg_category AS c ON c.category_id = fc.category_id
WHERE EXISTS (SELECT 1 FROM temp.pagila_inc_keys_film_category AS k
              WHERE k.film_id = fc.film_id AND k.category_id = fc.category_id);

CREATE OR REPLACE TEMP TABLE pagila_chg_film_category AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_film_category AS s
    WHERE EXISTS (SELECT 1 FROM temp.pagila_inc_keys_film_category AS k
                  WHERE k.film_id = s.film_id AND k.category_id = s.category_id)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.film_id, old_row.film_id) AS film_id,
       coalesce(new_row.category_id, old_row.category_id) AS category_id
FROM temp.pagila_inc_stg_film_category AS new_row
FULL JOIN old AS old_row ON old_row.film_id = new_row.film_id AND old_row.category_id = new_row.category_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_film_category AS s
WHERE EXISTS (SELECT 1 FROM temp.pagila_chg_film_category AS k
              WHERE k.film_id = s.film_id AND k.category_id = s.category_id);

INSERT INTO {{silver}}.stg_film_category
SELECT * FROM temp.pagila_inc_stg_film_category AS s
WHERE EXISTS (SELECT 1 FROM temp.pagila_chg_film_category AS k
              WHERE k.film_id = s.film_id AND k.category_id = s.category_id);
