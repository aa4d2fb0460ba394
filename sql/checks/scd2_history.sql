-- check scd2_history: the SCD2 dimensions (dim_customer, dim_store, dim_staff) hold a sound history.
-- Per dimension, each expected 0:
--   scd2_current:<dim>     entities whose current versions are not exactly one (none when their
--                          latest version is marked deleted), plus the difference between the
--                          number of current versions and the number of entities in silver staging
--   scd2_intervals:<dim>   versions that break the timeline: a first version not starting at
--                          1900-01-01, valid_from >= valid_to, a gap or an overlap with the next
--                          version (valid_to <> next valid_from), an open version that is not the
--                          last, is_current <> (valid_to IS NULL), a current version marked deleted
-- The unknown member (-1, natural key NULL) is left out. Version keys are covered by
-- unknown_members (unique) and by the key maps' own constraints (never reused).
-- Which entities: those the placeholders scd2_scope_customer, scd2_scope_store and
-- scd2_scope_staff admit (SQL conditions on the natural key). A full build and pagila_check()
-- pass true: every entity. An incremental build passes its SCD2 scope (temp
-- pagila_scd_scope_*), the only entities whose versions it can open, close or overwrite. The count of current versions against staging is
-- always over the whole dimension.
-- Cheap on large dimensions: one aggregation per entity, the window only over entities that have
-- more than one version, staging and current versions only counted.
-- Returns: check VARCHAR, expected VARCHAR, actual VARCHAR, ok BOOLEAN.
WITH versions AS (
    SELECT 'dim_customer' AS dim, customer_id AS id, valid_from, valid_to, is_current, is_deleted
    FROM {{gold}}.dim_customer WHERE customer_key <> -1 AND {{scd2_scope_customer}}
    UNION ALL
    SELECT 'dim_store', store_id, valid_from, valid_to, is_current, is_deleted
    FROM {{gold}}.dim_store WHERE store_key <> -1 AND {{scd2_scope_store}}
    UNION ALL
    SELECT 'dim_staff', staff_id, valid_from, valid_to, is_current, is_deleted
    FROM {{gold}}.dim_staff WHERE staff_key <> -1 AND {{scd2_scope_staff}}
),
current_versions AS (
    SELECT 'dim_customer' AS dim, count_if(is_current) AS n FROM {{gold}}.dim_customer
    WHERE customer_key <> -1
    UNION ALL
    SELECT 'dim_store', count_if(is_current) FROM {{gold}}.dim_store WHERE store_key <> -1
    UNION ALL
    SELECT 'dim_staff', count_if(is_current) FROM {{gold}}.dim_staff WHERE staff_key <> -1
),
staged AS (
    SELECT 'dim_customer' AS dim, count(*) AS n FROM {{silver}}.stg_customer
    UNION ALL
    SELECT 'dim_store', count(*) FROM {{silver}}.stg_store
    UNION ALL
    SELECT 'dim_staff', count(*) FROM {{silver}}.stg_staff
),
per_id AS (
    SELECT
        dim,
        id,
        count(*) AS versions,
        count_if(is_current) AS current_versions,
        count(*) FILTER (WHERE valid_from >= valid_to
            OR is_current IS DISTINCT FROM (valid_to IS NULL)
            OR (is_current AND is_deleted)
            OR is_deleted IS NULL) AS bad_rows,
        min(valid_from) AS first_from,
        arg_max(is_deleted, valid_from) AS latest_deleted
    FROM versions
    GROUP BY dim, id
),
bad_current AS (
    SELECT s.dim,
           coalesce(p.bad, 0) + abs(s.n - c.n) AS n
    FROM staged AS s
    JOIN current_versions AS c ON c.dim = s.dim
    LEFT JOIN (
        SELECT dim,
               count_if(current_versions <> CASE WHEN latest_deleted THEN 0 ELSE 1 END) AS bad
        FROM per_id
        GROUP BY dim
    ) AS p ON p.dim = s.dim
),
successions AS (
    SELECT dim, valid_to, lead(valid_from) OVER (PARTITION BY dim, id ORDER BY valid_from) AS next_from
    FROM versions
    WHERE (dim, id) IN (SELECT dim, id FROM per_id WHERE versions > 1)
),
bad_intervals AS (
    SELECT dim, sum(n) AS n FROM (
        SELECT dim, bad_rows + (first_from <> TIMESTAMP '1900-01-01')::INTEGER AS n FROM per_id
        UNION ALL
        SELECT dim, 1 FROM successions
        WHERE next_from IS NOT NULL AND valid_to IS DISTINCT FROM next_from
    ) AS x
    GROUP BY dim
),
dims AS (
    SELECT unnest(['dim_customer', 'dim_store', 'dim_staff']) AS dim
),
results AS (
    SELECT 'scd2_current:' || d.dim AS "check", coalesce(c.n, 0) AS n
    FROM dims AS d LEFT JOIN bad_current AS c ON c.dim = d.dim
    UNION ALL
    SELECT 'scd2_intervals:' || d.dim, coalesce(i.n, 0)
    FROM dims AS d LEFT JOIN bad_intervals AS i ON i.dim = d.dim
)
SELECT "check", '0' AS expected, n::VARCHAR AS actual, n = 0 AS ok
FROM results
ORDER BY "check";
