-- stg_address: incremental upsert of silver stg_address (see staging/stg_address for the rows).
-- Restages the addresses read in this run (temp pagila_delta_address, pagila_deleted_address)
-- and those whose city or country was read (temp pagila_delta_city/country and
-- pagila_deleted_city/country): their city and country names are part of the row.
-- The restaged rows are compared with the staged ones and only rows that differ are replaced, so
-- a row read again by the lookback window but unchanged stays as it is.
-- Leaves temp pagila_chg_address(address_id): addresses whose staged row was inserted, updated or
-- deleted (read by the SCD2 scope: customers, staff and stores living there).
CREATE OR REPLACE TEMP TABLE pagila_inc_keys_address AS
WITH cities AS (
    SELECT city_id FROM temp.pagila_delta_city
    UNION
    SELECT city_id FROM temp.pagila_deleted_city
    UNION
    SELECT ci.city_id FROM {{bronze}}.city AS ci
    WHERE ci.country_id IN (SELECT country_id FROM temp.pagila_delta_country
                            UNION ALL
                            SELECT country_id FROM temp.pagila_deleted_country)
)
SELECT address_id FROM temp.pagila_delta_address
UNION
SELECT address_id FROM temp.pagila_deleted_address
UNION
SELECT a.address_id FROM {{bronze}}.address AS a WHERE a.city_id IN (SELECT city_id FROM cities);

CREATE OR REPLACE TEMP TABLE pagila_inc_stg_address AS
SELECT
    a.address_id::INTEGER                         AS address_id,
    trim(a.address)                               AS address,
    nullif(trim(a.address2), '')                  AS address2,
    nullif(trim(a.district), '')                  AS district,
    nullif(trim(a.postal_code), '')               AS postal_code,
    nullif(trim(a.phone), '')                     AS phone,
    a.city_id::INTEGER                            AS city_id,
    trim(ci.city)                                 AS city,
    ci.country_id::INTEGER                        AS country_id,
    trim(co.country)                              AS country,
    make_timestamp(epoch_us(a.last_update))       AS last_update,
    make_timestamp(greatest(epoch_us(a.last_update), epoch_us(ci.last_update),
                            epoch_us(co.last_update)))
                                                  AS changed_at
FROM {{bronze}}.address AS a
LEFT JOIN {{bronze}}.city AS ci ON ci.city_id = a.city_id
LEFT JOIN {{bronze}}.country AS co ON co.country_id = ci.country_id
WHERE a.address_id IN (SELECT address_id FROM temp.pagila_inc_keys_address);

CREATE OR REPLACE TEMP TABLE pagila_chg_address AS
WITH old AS (
    SELECT * FROM {{silver}}.stg_address
    WHERE address_id IN (SELECT address_id FROM temp.pagila_inc_keys_address)
)
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.address_id, old_row.address_id) AS address_id
FROM temp.pagila_inc_stg_address AS new_row
FULL JOIN old AS old_row ON old_row.address_id = new_row.address_id
WHERE new_row IS DISTINCT FROM old_row;

DELETE FROM {{silver}}.stg_address
WHERE address_id IN (SELECT address_id FROM temp.pagila_chg_address);

INSERT INTO {{silver}}.stg_address
SELECT * FROM temp.pagila_inc_stg_address
WHERE address_id IN (SELECT address_id FROM temp.pagila_chg_address);
