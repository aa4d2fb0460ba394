-- keymap_customer: persistent surrogate keys of the customer entity. NEVER rebuilt, only appended.
-- Grain: one row per customer_id ever seen by any build into this silver schema.
-- Keys: customer_id (natural key, PRIMARY KEY), customer_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_customer.
-- Rule: a natural key seen for the first time gets max(customer_key) + 1, new keys handed out
-- in ascending customer_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: customer_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while customer_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_customer (
    customer_id     INTEGER NOT NULL PRIMARY KEY,
    customer_key    INTEGER NOT NULL UNIQUE CHECK (customer_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_customer (customer_id, customer_key, first_run_id)
SELECT
    n.customer_id,
    (SELECT coalesce(max(k.customer_key), 0) FROM {{silver}}.keymap_customer AS k)
        + row_number() OVER (ORDER BY n.customer_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.customer_id
    FROM {{silver}}.stg_customer AS s
    WHERE s.customer_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_customer AS m WHERE m.customer_id = s.customer_id)
) AS n;
