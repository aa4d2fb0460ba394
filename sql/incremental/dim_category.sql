-- dim_category: incremental upsert of gold dim_category (see dims/dim_category for the columns).
-- The categories whose staged row changed (temp pagila_chg_category) are replaced by their new
-- row. A category that left the source (deleted) keeps the row and key, with is_deleted = true.
-- category_key comes from silver keymap_category (durable).
DELETE FROM {{gold}}.dim_category
WHERE category_id IN (SELECT category_id FROM temp.pagila_chg_category)
  AND category_id IN (SELECT category_id FROM {{silver}}.stg_category);

INSERT INTO {{gold}}.dim_category
SELECT
    k.category_key,
    c.category_id,
    c.category,
    false AS is_deleted
FROM {{silver}}.stg_category AS c
JOIN {{silver}}.keymap_category AS k ON k.category_id = c.category_id
WHERE c.category_id IN (SELECT category_id FROM temp.pagila_chg_category)
ORDER BY k.category_key;

UPDATE {{gold}}.dim_category AS d
SET is_deleted = true
WHERE d.category_id IN (SELECT category_id FROM temp.pagila_chg_category)
  AND NOT d.is_deleted
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.stg_category AS c WHERE c.category_id = d.category_id);
