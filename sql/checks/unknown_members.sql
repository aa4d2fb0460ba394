-- check unknown_members: every dimension has exactly one unknown member with key -1, and
-- every surrogate key is unique and never NULL.
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH dims AS (
    SELECT 'dim_date' AS dim, count_if(date_key = -1) AS unknown_rows,
           count(*) - count(DISTINCT date_key) AS dup_keys FROM {{gold}}.dim_date
    UNION ALL
    SELECT 'dim_customer', count_if(customer_key = -1),
           count(*) - count(DISTINCT customer_key) FROM {{gold}}.dim_customer
    UNION ALL
    SELECT 'dim_film', count_if(film_key = -1),
           count(*) - count(DISTINCT film_key) FROM {{gold}}.dim_film
    UNION ALL
    SELECT 'dim_store', count_if(store_key = -1),
           count(*) - count(DISTINCT store_key) FROM {{gold}}.dim_store
    UNION ALL
    SELECT 'dim_staff', count_if(staff_key = -1),
           count(*) - count(DISTINCT staff_key) FROM {{gold}}.dim_staff
    UNION ALL
    SELECT 'dim_actor', count_if(actor_key = -1),
           count(*) - count(DISTINCT actor_key) FROM {{gold}}.dim_actor
    UNION ALL
    SELECT 'dim_category', count_if(category_key = -1),
           count(*) - count(DISTINCT category_key) FROM {{gold}}.dim_category
)
SELECT 'unknown_member:' || dim AS "check", '1' AS expected, unknown_rows::VARCHAR AS actual,
       unknown_rows = 1 AS ok
FROM dims
UNION ALL
SELECT 'unique_key:' || dim, '0', dup_keys::VARCHAR, dup_keys = 0
FROM dims
ORDER BY 1;
