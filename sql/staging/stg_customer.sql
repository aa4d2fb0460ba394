-- stg_customer: customers, typed and cleaned.
-- Grain: one row per customer. Key: customer_id. Source: bronze customer.
-- active: Pagila carries two flags. customer.active is the INTEGER flag inherited from
-- Sakila (1 = active, 0 = inactive) and it is the one that actually varies in the data
-- (15 customers have active = 0). customer.activebool is a BOOLEAN that Pagila added with
-- a default of true and is true for every row, so it does not record inactivity.
-- We therefore derive active from the integer flag: active = (active = 1). A NULL integer
-- flag falls back to activebool. activebool is kept as source_activebool for lineage.
-- Timestamps: timestamptz converted to naive TIMESTAMP in UTC (the business timezone) with
-- epoch arithmetic, which does not depend on the session TimeZone or on ICU.
CREATE OR REPLACE TABLE {{silver}}.stg_customer AS
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
FROM {{bronze}}.customer AS c;
