-- stg_address: addresses conformed with their city and country.
-- Grain: one row per address. Key: address_id.
-- Source: bronze address, city, country (city/country LEFT JOINed, so an address whose
-- city is missing is kept with NULL city/country).
-- Cleaning: text trimmed, empty address2/postal_code/phone become NULL (Pagila stores '' for "none").
-- changed_at: the latest last_update of the address, its city and its country rows (naive UTC),
-- i.e. when the address as a whole last changed. The SCD2 dimensions date a moved address by it.
CREATE OR REPLACE TABLE {{silver}}.stg_address AS
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
-- In key order: with the joins DuckDB would otherwise insert with several threads and leave a
-- part-filled row group mid-table, which the CHECKPOINT after an incremental run's few deletes
-- merges with its neighbours and compresses again (see build/run.rs).
ORDER BY a.address_id;
