-- check fact_keys_resolve: every foreign key of every fact row points at an existing
-- dimension row (the unknown member -1 included). One row per fact foreign key, expected 0
-- dangling rows (NULL keys count as dangling).
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH dangling AS (
    SELECT 'fact_sales.date_key' AS fk, count(*) AS n FROM {{gold}}.fact_sales AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_date AS d WHERE d.date_key = f.date_key)
    UNION ALL
    SELECT 'fact_sales.customer_key', count(*) FROM {{gold}}.fact_sales AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_customer AS d WHERE d.customer_key = f.customer_key)
    UNION ALL
    SELECT 'fact_sales.film_key', count(*) FROM {{gold}}.fact_sales AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_film AS d WHERE d.film_key = f.film_key)
    UNION ALL
    SELECT 'fact_sales.store_key', count(*) FROM {{gold}}.fact_sales AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_store AS d WHERE d.store_key = f.store_key)
    UNION ALL
    SELECT 'fact_sales.staff_key', count(*) FROM {{gold}}.fact_sales AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_staff AS d WHERE d.staff_key = f.staff_key)
    UNION ALL
    SELECT 'fact_rental.rental_date_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_date AS d WHERE d.date_key = f.rental_date_key)
    UNION ALL
    SELECT 'fact_rental.return_date_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_date AS d WHERE d.date_key = f.return_date_key)
    UNION ALL
    SELECT 'fact_rental.customer_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_customer AS d WHERE d.customer_key = f.customer_key)
    UNION ALL
    SELECT 'fact_rental.film_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_film AS d WHERE d.film_key = f.film_key)
    UNION ALL
    SELECT 'fact_rental.store_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_store AS d WHERE d.store_key = f.store_key)
    UNION ALL
    SELECT 'fact_rental.staff_key', count(*) FROM {{gold}}.fact_rental AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_staff AS d WHERE d.staff_key = f.staff_key)
    UNION ALL
    SELECT 'bridge_film_actor.film_key', count(*) FROM {{gold}}.bridge_film_actor AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_film AS d WHERE d.film_key = f.film_key)
    UNION ALL
    SELECT 'bridge_film_actor.actor_key', count(*) FROM {{gold}}.bridge_film_actor AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_actor AS d WHERE d.actor_key = f.actor_key)
    UNION ALL
    SELECT 'bridge_film_category.film_key', count(*) FROM {{gold}}.bridge_film_category AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_film AS d WHERE d.film_key = f.film_key)
    UNION ALL
    SELECT 'bridge_film_category.category_key', count(*) FROM {{gold}}.bridge_film_category AS f
    WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_category AS d WHERE d.category_key = f.category_key)
)
SELECT 'fk_resolves:' || fk AS "check", '0' AS expected, n::VARCHAR AS actual, n = 0 AS ok
FROM dangling
ORDER BY fk;
