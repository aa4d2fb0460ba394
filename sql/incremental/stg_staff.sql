-- stg_staff: incremental upsert of silver stg_staff (see staging/stg_staff for the rows, no
-- password, no picture). Restages the staff members read in this run (temp pagila_delta_staff,
-- pagila_deleted_staff), compares them with the staged rows and replaces only the rows that
-- differ, so a row read again by the lookback window but unchanged stays as it is.
-- Leaves temp pagila_chg_staff(staff_id): staff whose staged row was inserted, updated or deleted.
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_staff AS
SELECT
    s.staff_id::INTEGER                                   AS staff_id,
    trim(s.first_name)                                    AS first_name,
    trim(s.last_name)                                     AS last_name,
    concat_ws(' ', trim(s.first_name), trim(s.last_name)) AS full_name,
    nullif(trim(s.email), '')                             AS email,
    nullif(trim(s.username), '')                          AS username,
    s.address_id::INTEGER                                 AS address_id,
    s.store_id::INTEGER                                   AS store_id,
    s.active                                              AS active,
    s.picture IS NOT NULL                                 AS has_picture,
    make_timestamp(epoch_us(s.last_update))               AS last_update
FROM temp.pagila_delta_staff AS s;

CREATE OR REPLACE TEMP TABLE pagila_chg_staff AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_staff
    WHERE staff_id IN (SELECT staff_id FROM temp.pagila_delta_staff
                       UNION ALL
                       SELECT staff_id FROM temp.pagila_deleted_staff)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.staff_id, old_row.staff_id) AS staff_id
FROM temp.pagila_inc_stg_staff AS new_row
FULL JOIN old AS old_row ON old_row.staff_id = new_row.staff_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_staff
WHERE staff_id IN (SELECT staff_id FROM temp.pagila_chg_staff);

INSERT INTO {{silver}}.stg_staff
SELECT * FROM temp.pagila_inc_stg_staff
WHERE staff_id IN (SELECT staff_id FROM temp.pagila_chg_staff);
