-- pagila_sales: the original pagila_sales project's three tables, as views over the star.
-- dim_customers  one row per customer: the current version of each (unknown member, closed
--                versions and customers deleted from the source excluded).
--                customer_id INTEGER, name VARCHAR (first_name || ' ' || last_name),
--                active BOOLEAN (from Pagila's integer customer.active flag, see stg_customer).
-- dim_films      one row per film (unknown member and films deleted from the source excluded).
--                film_id INTEGER, title VARCHAR, release_year INTEGER (Pagila's year domain).
-- fact_sales     one row per payment.
--                sales_id INTEGER (= payment_id), sale_date TIMESTAMP (payment time as a naive
--                timestamp in UTC, the business timezone), customer_id INTEGER (paying
--                customer), amount DECIMAL(5,2) (exact, as numeric(5,2) in Postgres),
--                film_id INTEGER (film of the paid rental, NULL when it cannot be resolved).
--                customer_id comes from the customer version the payment points at, which
--                is always a version of the paying customer.
-- Views, not tables: they always reflect the latest gold build and cost nothing to keep.
-- Source: gold dim_customer, dim_film, fact_sales.
CREATE OR REPLACE VIEW {{compat}}.dim_customers AS
SELECT
    c.customer_id::INTEGER                 AS customer_id,
    c.full_name::VARCHAR                   AS name,
    c.active::BOOLEAN                      AS active
FROM {{gold}}.dim_customer AS c
WHERE c.customer_key <> -1 AND c.is_current;

CREATE OR REPLACE VIEW {{compat}}.dim_films AS
SELECT
    f.film_id::INTEGER                     AS film_id,
    f.title::VARCHAR                       AS title,
    f.release_year::INTEGER                AS release_year
FROM {{gold}}.dim_film AS f
WHERE f.film_key <> -1 AND NOT f.is_deleted;

CREATE OR REPLACE VIEW {{compat}}.fact_sales AS
SELECT
    s.payment_id::INTEGER                  AS sales_id,
    s.payment_date::TIMESTAMP              AS sale_date,
    c.customer_id::INTEGER                 AS customer_id,
    s.amount::DECIMAL(5,2)                 AS amount,
    f.film_id::INTEGER                     AS film_id
FROM {{gold}}.fact_sales AS s
JOIN {{gold}}.dim_customer AS c ON c.customer_key = s.customer_key
JOIN {{gold}}.dim_film AS f ON f.film_key = s.film_key;
