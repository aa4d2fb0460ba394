-- stg_staff: staff members, typed and cleaned.
-- Grain: one row per staff member. Key: staff_id. Source: bronze staff.
-- Deliberately NOT carried: password (credential, must never reach silver or gold) and
-- picture (BLOB), reduced to has_picture.
CREATE OR REPLACE TABLE {{silver}}.stg_staff AS
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
FROM {{bronze}}.staff AS s;
