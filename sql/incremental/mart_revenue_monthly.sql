-- mart_revenue_monthly: incremental maintenance of gold mart_revenue_monthly (see
-- marts/mart_revenue_monthly for the columns). payment_count, revenue and revenue_allocated are
-- sums over (payment x bridge row), so each group is updated by the difference between what this
-- run adds and what it takes away, without reading the rest of the fact:
--   taken away: the fact_sales rows this run replaced or removed (temp pagila_inc_old_fact_sales)
--   and the untouched payments of films whose categories changed (temp pagila_inc_films_category),
--   both through the bridge as it was (temp pagila_inc_old_bridge_film_category for those films),
--   added: the fact_sales rows this run wrote (temp pagila_inc_new_fact_sales) and those same
--   untouched payments, through the bridge as it is now.
-- A group whose last payment went away loses its row. Category names (overwritten in
-- dim_category) are refreshed on every row.
CREATE OR REPLACE TEMP TABLE pagila_inc_delta_revenue AS
WITH moved_films AS (
    SELECT kf.film_key
    FROM {{silver}}.keymap_film AS kf
    WHERE kf.film_id IN (SELECT film_id FROM temp.pagila_inc_films_category)
),
bridge_before AS (
    SELECT film_key, category_key, weighting_factor FROM {{gold}}.bridge_film_category
    WHERE film_key NOT IN (SELECT film_key FROM moved_films)
    UNION ALL
    SELECT film_key, category_key, weighting_factor FROM temp.pagila_inc_old_bridge_film_category
),
untouched AS (
    SELECT fs.date_key, fs.store_key, fs.film_key, fs.amount
    FROM {{gold}}.fact_sales AS fs
    WHERE fs.film_key IN (SELECT film_key FROM moved_films)
      AND fs.payment_id NOT IN (SELECT payment_id FROM temp.pagila_inc_aff_payment)
),
removed AS (
    SELECT date_key, store_key, film_key, amount FROM temp.pagila_inc_old_fact_sales
    UNION ALL
    SELECT date_key, store_key, film_key, amount FROM untouched
),
added AS (
    SELECT date_key, store_key, film_key, amount FROM temp.pagila_inc_new_fact_sales
    UNION ALL
    SELECT date_key, store_key, film_key, amount FROM untouched
),
signed AS (
    SELECT -1 AS sign, r.*, b.category_key, b.weighting_factor
    FROM removed AS r JOIN bridge_before AS b ON b.film_key = r.film_key
    UNION ALL
    SELECT 1, a.*, b.category_key, b.weighting_factor
    FROM added AS a JOIN {{gold}}.bridge_film_category AS b ON b.film_key = a.film_key
)
SELECT
    make_date(dd.year, dd.month, 1)                   AS month_start,
    s.store_key,
    s.category_key,
    sum(s.sign)::BIGINT                               AS payment_count,
    sum(s.sign * s.amount)::DECIMAL(18,2)             AS revenue,
    sum(s.sign * (s.amount::DOUBLE * s.weighting_factor)::DECIMAL(18,6))::DECIMAL(18,6)
                                                      AS revenue_allocated
FROM signed AS s
JOIN {{gold}}.dim_date AS dd ON dd.date_key = s.date_key
JOIN {{gold}}.dim_store AS ds ON ds.store_key = s.store_key
JOIN {{gold}}.dim_category AS dc ON dc.category_key = s.category_key
GROUP BY ALL;

UPDATE {{gold}}.mart_revenue_monthly AS m
SET payment_count = m.payment_count + d.payment_count,
    revenue = m.revenue + d.revenue,
    revenue_allocated = m.revenue_allocated + d.revenue_allocated
FROM temp.pagila_inc_delta_revenue AS d
WHERE m.month_start IS NOT DISTINCT FROM d.month_start
  AND m.store_key = d.store_key AND m.category_key = d.category_key;

INSERT INTO {{gold}}.mart_revenue_monthly
SELECT
    d.month_start,
    year(d.month_start)::INTEGER,
    month(d.month_start)::INTEGER,
    monthname(d.month_start),
    d.store_key,
    ds.store_id,
    d.category_key,
    dc.category,
    d.payment_count,
    d.revenue,
    d.revenue_allocated
FROM temp.pagila_inc_delta_revenue AS d
JOIN {{gold}}.dim_store AS ds ON ds.store_key = d.store_key
JOIN {{gold}}.dim_category AS dc ON dc.category_key = d.category_key
WHERE d.payment_count > 0
  AND NOT EXISTS (SELECT 1 FROM {{gold}}.mart_revenue_monthly AS m
                  WHERE m.month_start IS NOT DISTINCT FROM d.month_start
                    AND m.store_key = d.store_key AND m.category_key = d.category_key);

DELETE FROM {{gold}}.mart_revenue_monthly WHERE payment_count = 0;

UPDATE {{gold}}.mart_revenue_monthly AS m
SET category = dc.category
FROM {{gold}}.dim_category AS dc
WHERE dc.category_key = m.category_key AND m.category IS DISTINCT FROM dc.category;
