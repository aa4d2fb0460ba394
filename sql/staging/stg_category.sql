-- stg_category: film categories.
-- Grain: one row per category. Key: category_id. Source: bronze category.
CREATE OR REPLACE TABLE {{silver}}.stg_category AS
SELECT
    c.category_id::INTEGER                   AS category_id,
    trim(c.name)                             AS category,
    make_timestamp(epoch_us(c.last_update))  AS last_update
FROM {{bronze}}.category AS c;
