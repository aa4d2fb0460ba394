-- dim_customer: customers with their address and home store.
-- Grain: one row per customer (current state, SCD type 1) plus the unknown member.
-- Keys: customer_key (INTEGER surrogate from silver keymap_customer, durable across rebuilds),
-- customer_id (natural key, NULL for the unknown member). customer_key -1 = unknown.
-- Source: silver stg_customer, stg_address, keymap_customer.
-- active: derived from Pagila's integer customer.active flag (see stg_customer).
-- SCD2 later: this table becomes one row per customer version with valid_from, valid_to,
-- is_current (dbt snapshot conventions) keyed by a version key, customer_key staying the
-- durable entity key. Facts currently join on customer_key.
CREATE OR REPLACE TABLE {{gold}}.dim_customer AS
SELECT
    k.customer_key,
    c.customer_id,
    c.first_name,
    c.last_name,
    c.full_name,
    c.email,
    c.active,
    c.create_date,
    c.store_id      AS home_store_id,
    c.address_id,
    a.address,
    a.address2,
    a.district,
    a.postal_code,
    a.phone,
    a.city,
    a.country
FROM {{silver}}.stg_customer AS c
JOIN {{silver}}.keymap_customer AS k ON k.customer_id = c.customer_id
LEFT JOIN {{silver}}.stg_address AS a ON a.address_id = c.address_id
UNION ALL
SELECT -1, NULL, 'Unknown', 'Unknown', 'Unknown', NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, 'Unknown', 'Unknown'
ORDER BY customer_key;
