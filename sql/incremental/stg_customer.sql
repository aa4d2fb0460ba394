-- stg_customer: incremental upsert of silver stg_customer (see staging/stg_customer for the rows).
-- Restages the customers read in this run (temp pagila_delta_customer, pagila_deleted_customer),
-- compares them with the staged rows and replaces only the rows that differ, so a row read again
-- by the lookback window but unchanged stays as it is.
-- Leaves temp pagila_chg_customer(customer_id): customers whose staged row was inserted, updated
-- or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_customer AS
SELECT
    c.customer_id::INTEGER                                AS customer_id,
    c.store_id::INTEGER                                   AS store_id,
    trim(c.first_name)                                    AS first_name,
    trim(c.last_name)                                     AS last_name,
    concat_ws(' ', trim(c.first_name), trim(c.last_name)) AS full_name,
    nullif(trim(c.email), '')                             AS email,
    c.address_id::INTEGER                                 AS address_id,
    CASE WHEN c.active IS NULL THEN c.activebool
         ELSE c.active = 1 END                            AS active,
    c.activebool                                          AS source_activebool,
    c.create_date::DATE                                   AS create_date,
    make_timestamp(epoch_us(c.last_update))               AS last_update
FROM temp.pagila_delta_customer AS c;

CREATE OR REPLACE TEMP TABLE pagila_chg_customer AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_customer
    WHERE customer_id IN (SELECT customer_id FROM temp.pagila_delta_customer
                          UNION ALL
                          SELECT customer_id FROM temp.pagila_deleted_customer)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.customer_id, old_row.customer_id) AS customer_id
FROM temp.pagila_inc_stg_customer AS new_row
FULL JOIN old AS old_row ON old_row.customer_id = new_row.customer_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_customer
WHERE customer_id IN (SELECT customer_id FROM temp.pagila_chg_customer);

INSERT INTO {{silver}}.stg_customer
SELECT * FROM temp.pagila_inc_stg_customer
WHERE customer_id IN (SELECT customer_id FROM temp.pagila_chg_customer);
