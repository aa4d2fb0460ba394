-- stg_category: incremental upsert of silver stg_category (see staging/stg_category).
-- Restages the categories read in this run (temp pagila_delta_category, pagila_deleted_category)
-- and replaces only the rows that differ from the staged ones.
-- Leaves temp pagila_chg_category(category_id): categories inserted, updated or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_category AS
SELECT
    c.category_id::INTEGER                   AS category_id,
    trim(c.name)                             AS category,
    make_timestamp(epoch_us(c.last_update))  AS last_update
FROM temp.pagila_delta_category AS c;

CREATE OR REPLACE TEMP TABLE pagila_chg_category AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_category
    WHERE category_id IN (SELECT category_id FROM temp.pagila_delta_category
                          UNION ALL
                          SELECT category_id FROM temp.pagila_deleted_category)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.category_id, old_row.category_id) AS category_id
FROM temp.pagila_inc_stg_category AS new_row
FULL JOIN old AS old_row ON old_row.category_id = new_row.category_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_category
WHERE category_id IN (SELECT category_id FROM temp.pagila_chg_category);

INSERT INTO {{silver}}.stg_category
SELECT * FROM temp.pagila_inc_stg_category
WHERE category_id IN (SELECT category_id FROM temp.pagila_chg_category);
