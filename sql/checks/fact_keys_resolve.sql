-- check fact_keys_resolve: every foreign key of every fact row points at an existing
-- dimension row (the unknown member -1 included) and, for the SCD2 dimensions (customer, store,
-- staff), at a version valid at the fact's time: payment_date for fact_sales, rental_date for
-- fact_rental (valid_from <= time < valid_to, valid_to NULL = open). One row per fact foreign key,
-- expected 0 dangling rows (NULL keys count as dangling).
-- Written with ANTI JOIN: NOT EXISTS is planned far slower on tables written in the same
-- transaction (a full build's).
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH dangling AS (
    SELECT 'fact_sales.date_key' AS fk, count(*) AS n
    FROM {{gold}}.fact_sales AS f
    ANTI JOIN {{gold}}.dim_date AS d ON d.date_key = f.date_key
    UNION ALL
    SELECT 'fact_sales.customer_key', count(*)
    FROM {{gold}}.fact_sales AS f
    ANTI JOIN {{gold}}.dim_customer AS d
           ON d.customer_key = f.customer_key AND d.valid_from <= f.payment_date
          AND f.payment_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'fact_sales.film_key', count(*)
    FROM {{gold}}.fact_sales AS f
    ANTI JOIN {{gold}}.dim_film AS d ON d.film_key = f.film_key
    UNION ALL
    SELECT 'fact_sales.store_key', count(*)
    FROM {{gold}}.fact_sales AS f
    ANTI JOIN {{gold}}.dim_store AS d
           ON d.store_key = f.store_key AND d.valid_from <= f.payment_date
          AND f.payment_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'fact_sales.staff_key', count(*)
    FROM {{gold}}.fact_sales AS f
    ANTI JOIN {{gold}}.dim_staff AS d
           ON d.staff_key = f.staff_key AND d.valid_from <= f.payment_date
          AND f.payment_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'fact_rental.rental_date_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_date AS d ON d.date_key = f.rental_date_key
    UNION ALL
    SELECT 'fact_rental.return_date_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_date AS d ON d.date_key = f.return_date_key
    UNION ALL
    SELECT 'fact_rental.customer_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_customer AS d
           ON d.customer_key = f.customer_key AND d.valid_from <= f.rental_date
          AND f.rental_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'fact_rental.film_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_film AS d ON d.film_key = f.film_key
    UNION ALL
    SELECT 'fact_rental.store_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_store AS d
           ON d.store_key = f.store_key AND d.valid_from <= f.rental_date
          AND f.rental_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'fact_rental.staff_key', count(*)
    FROM {{gold}}.fact_rental AS f
    ANTI JOIN {{gold}}.dim_staff AS d
           ON d.staff_key = f.staff_key AND d.valid_from <= f.rental_date
          AND f.rental_date < coalesce(d.valid_to, TIMESTAMP 'infinity')
    UNION ALL
    SELECT 'bridge_film_actor.film_key', count(*)
    FROM {{gold}}.bridge_film_actor AS f
    ANTI JOIN {{gold}}.dim_film AS d ON d.film_key = f.film_key
    UNION ALL
    SELECT 'bridge_film_actor.actor_key', count(*)
    FROM {{gold}}.bridge_film_actor AS f
    ANTI JOIN {{gold}}.dim_actor AS d ON d.actor_key = f.actor_key
    UNION ALL
    SELECT 'bridge_film_category.film_key', count(*)
    FROM {{gold}}.bridge_film_category AS f
    ANTI JOIN {{gold}}.dim_film AS d ON d.film_key = f.film_key
    UNION ALL
    SELECT 'bridge_film_category.category_key', count(*)
    FROM {{gold}}.bridge_film_category AS f
    ANTI JOIN {{gold}}.dim_category AS d ON d.category_key = f.category_key
)
SELECT 'fk_resolves:' || fk AS "check", '0' AS expected, n::VARCHAR AS actual, n = 0 AS ok
FROM dangling
ORDER BY fk;
