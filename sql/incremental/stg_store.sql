-- stg_store: incremental upsert of silver stg_store (see staging/stg_store for the rows).
-- Restages the stores read in this run (temp pagila_delta_store, pagila_deleted_store), the
-- stores whose address changed (temp pagila_chg_address) and those whose manager's staged row
-- changed (temp pagila_chg_staff: manager_name). Only rows that differ from the staged ones are
-- replaced, so a row read again by the lookback window but unchanged stays as it is.
-- Leaves temp pagila_chg_store(store_id): stores whose staged row was inserted, updated or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_store AS
SELECT store_id FROM temp.pagila_delta_store
UNION
SELECT store_id FROM temp.pagila_deleted_store
UNION
SELECT st.store_id FROM {{bronze}}.store AS st
WHERE st.address_id IN (SELECT address_id FROM temp.pagila_chg_address)
   OR st.manager_staff_id IN (SELECT staff_id FROM temp.pagila_chg_staff);

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_store AS
WITH st AS MATERIALIZED (
    SELECT * FROM {{bronze}}.store
    WHERE store_id IN (SELECT store_id FROM temp.pagila_inc_keys_store)
)
SELECT
    st.store_id::INTEGER                      AS store_id,
    st.manager_staff_id::INTEGER              AS manager_staff_id,
    m.full_name                               AS manager_name,
    st.address_id::INTEGER                    AS address_id,
    a.address                                 AS address,
    a.address2                                AS address2,
    a.district                                AS district,
    a.postal_code                             AS postal_code,
    a.phone                                   AS phone,
    a.city                                    AS city,
    a.country                                 AS country,
    make_timestamp(epoch_us(st.last_update))  AS last_update,
    greatest(make_timestamp(epoch_us(st.last_update)), a.changed_at)
                                              AS changed_at
FROM st
-- only the addresses of these stores (joining all of them would cost a scan of every column)
LEFT JOIN (SELECT * FROM {{silver}}.stg_address WHERE address_id IN (SELECT address_id FROM st))
       AS a ON a.address_id = st.address_id
LEFT JOIN {{silver}}.stg_staff AS m ON m.staff_id = st.manager_staff_id;

CREATE OR REPLACE TEMP TABLE pagila_chg_store AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_store
    WHERE store_id IN (SELECT store_id FROM temp.pagila_inc_keys_store)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.store_id, old_row.store_id) AS store_id
FROM temp.pagila_inc_stg_store AS new_row
FULL JOIN old AS old_row ON old_row.store_id = new_row.store_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_store
WHERE store_id IN (SELECT store_id FROM temp.pagila_chg_store);

INSERT INTO {{silver}}.stg_store
SELECT * FROM temp.pagila_inc_stg_store
WHERE store_id IN (SELECT store_id FROM temp.pagila_chg_store);
