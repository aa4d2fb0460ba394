-- dim_store: stores with address, city, country and manager, SCD type 2 (history kept).
-- Grain: one row per store VERSION plus the unknown member.
-- Keys: store_key (INTEGER surrogate of the version, from silver keymap_store_version, never
-- reused), store_id (natural key, NULL for the unknown member). store_key -1 = unknown.
-- History follows dbt's snapshot conventions: a version holds from valid_from (inclusive) to
-- valid_to (exclusive), valid_to is NULL for the current version and is_current =
-- (valid_to IS NULL). The versions of a store are contiguous: each valid_to is the next
-- valid_from, so every instant after 1900-01-01 falls in exactly one version.
-- Tracked attributes (a change closes the current version and opens a new one with a new key):
--   the address: address, address2, district, postal_code, city, country.
-- Overwritten attributes (type 1: all versions of the store take the new value, no new
-- version): phone, manager_staff_id, manager_name.
-- valid_from: the first version of a store starts at 1900-01-01 00:00:00 (the beginning of time),
-- so every fact of the store finds a version however early it is dated. A later version starts at
-- the change's time: the latest last_update (naive UTC) of the store row and of its address, city
-- and country rows (stg_store.changed_at), but at least 1 microsecond after the version it
-- replaces starts.
-- Deletes: a store that left the source keeps its history, its current version is closed at the
-- run's time (UTC) and marked is_deleted. If the store comes back, a new version opens at that
-- same instant (no gap). is_deleted is false on every other row.
-- Facts join the version whose [valid_from, valid_to) holds the fact's timestamp.
-- Runs in both modes on temp pagila_scd_scope_store, the stores to merge: every store in a full
-- build (dims/scd2_scope_full), the changed ones in an incremental build (incremental/scd2_scope).
-- A full build therefore keeps the recorded history and adds to it exactly what an incremental
-- build would. What was decided is left in temp pagila_scd_store (store_id, action, switch_at): the
-- incremental facts re-point facts of that store dated at or after switch_at.
-- Source: silver stg_store, keymap_store_version, gold dim_store itself.
CREATE TABLE IF NOT EXISTS {{gold}}.dim_store (
    store_key         INTEGER NOT NULL,
    store_id          INTEGER,
    address           VARCHAR,
    address2          VARCHAR,
    district          VARCHAR,
    postal_code       VARCHAR,
    phone             VARCHAR,
    city              VARCHAR,
    country           VARCHAR,
    manager_staff_id  INTEGER,
    manager_name      VARCHAR,
    valid_from        TIMESTAMP,
    valid_to          TIMESTAMP,
    is_current        BOOLEAN,
    is_deleted        BOOLEAN
);

-- A dim_store built before history was kept (one row per store) becomes the first versions.
ALTER TABLE {{gold}}.dim_store ADD COLUMN IF NOT EXISTS valid_from TIMESTAMP DEFAULT TIMESTAMP '1900-01-01';
ALTER TABLE {{gold}}.dim_store ADD COLUMN IF NOT EXISTS valid_to TIMESTAMP;
ALTER TABLE {{gold}}.dim_store ADD COLUMN IF NOT EXISTS is_current BOOLEAN DEFAULT true;
ALTER TABLE {{gold}}.dim_store ADD COLUMN IF NOT EXISTS is_deleted BOOLEAN DEFAULT false;

INSERT INTO {{gold}}.dim_store BY NAME
SELECT -1 AS store_key, 'Unknown' AS city, 'Unknown' AS country, 'Unknown' AS manager_name,
       TIMESTAMP '1900-01-01' AS valid_from, true AS is_current, false AS is_deleted
WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_store WHERE store_key = -1);

-- Every version in the dimension has its key in the key map (only ever adds rows for a
-- dimension that predates the key map).
INSERT INTO {{silver}}.keymap_store_version (store_id, valid_from, store_key, first_run_id)
SELECT d.store_id, d.valid_from, d.store_key, {{run_id}}
FROM {{gold}}.dim_store AS d
WHERE d.store_key > 0
  AND d.store_id IN (SELECT store_id FROM temp.pagila_scd_scope_store)
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_store_version AS k
                  WHERE k.store_key = d.store_key);

-- The source state of the stores in scope.
CREATE OR REPLACE TEMP TABLE pagila_scd_src_store AS
SELECT
    x.store_id,
    x.address,
    x.address2,
    x.district,
    x.postal_code,
    x.phone,
    x.city,
    x.country,
    x.manager_staff_id,
    x.manager_name,
    coalesce(x.changed_at, make_timestamp(epoch_us(now()))) AS changed_at
FROM {{silver}}.stg_store AS x
WHERE x.store_id IN (SELECT store_id FROM temp.pagila_scd_scope_store);

-- One decision per store whose versions change:
--   open_first  never seen: first version from 1900-01-01
--   change      a tracked attribute differs from the current version: close it, open a new one
--   delete      gone from the source: close the current version and mark it deleted
--   reopen      back after a delete: new version from the delete's instant
-- switch_at is the instant the current version closes and/or the new one opens.
CREATE OR REPLACE TEMP TABLE pagila_scd_store AS
WITH latest AS (
    SELECT d.*
    FROM {{gold}}.dim_store AS d
    WHERE d.store_id IN (SELECT store_id FROM temp.pagila_scd_scope_store)
    QUALIFY row_number() OVER (PARTITION BY d.store_id ORDER BY d.valid_from DESC) = 1
),
decided AS (
    SELECT
        coalesce(s.store_id, l.store_id) AS store_id,
        CASE
            WHEN l.store_id IS NULL THEN 'open_first'
            WHEN s.store_id IS NULL THEN CASE WHEN l.is_current THEN 'delete' END
            WHEN NOT l.is_current THEN 'reopen'
            WHEN row(s.address, s.address2, s.district, s.postal_code, s.city, s.country)
                 IS DISTINCT FROM
                 row(l.address, l.address2, l.district, l.postal_code, l.city, l.country)
                THEN 'change'
        END AS action,
        s.changed_at,
        l.valid_from AS latest_from,
        l.valid_to   AS latest_to
    FROM temp.pagila_scd_src_store AS s
    FULL OUTER JOIN latest AS l ON l.store_id = s.store_id
)
SELECT
    store_id,
    action,
    CASE action
        WHEN 'open_first' THEN TIMESTAMP '1900-01-01'
        WHEN 'change' THEN greatest(changed_at, latest_from + INTERVAL 1 MICROSECOND)
        WHEN 'delete' THEN greatest(make_timestamp(epoch_us(now())), latest_from + INTERVAL 1 MICROSECOND)
        WHEN 'reopen' THEN latest_to
    END AS switch_at
FROM decided
WHERE action IS NOT NULL;

-- Keys of the new versions: max + 1 in (store_id, valid_from) order, old key if known.
INSERT INTO {{silver}}.keymap_store_version (store_id, valid_from, store_key, first_run_id)
SELECT
    a.store_id,
    a.switch_at,
    (SELECT coalesce(max(k.store_key), 0) FROM {{silver}}.keymap_store_version AS k)
        + row_number() OVER (ORDER BY a.store_id, a.switch_at),
    {{run_id}}
FROM temp.pagila_scd_store AS a
WHERE a.action <> 'delete'
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_store_version AS k
                  WHERE k.store_id = a.store_id AND k.valid_from = a.switch_at);

-- Close the current versions that changed or were deleted.
UPDATE {{gold}}.dim_store AS d
SET valid_to = a.switch_at, is_current = false, is_deleted = (a.action = 'delete')
FROM temp.pagila_scd_store AS a
WHERE d.store_id = a.store_id AND d.is_current AND a.action IN ('change', 'delete');

-- Open the new versions.
INSERT INTO {{gold}}.dim_store BY NAME
SELECT
    k.store_key,
    s.* EXCLUDE (changed_at),
    a.switch_at     AS valid_from,
    NULL::TIMESTAMP AS valid_to,
    true            AS is_current,
    false           AS is_deleted
FROM temp.pagila_scd_store AS a
JOIN temp.pagila_scd_src_store AS s ON s.store_id = a.store_id
JOIN {{silver}}.keymap_store_version AS k ON k.store_id = a.store_id AND k.valid_from = a.switch_at
WHERE a.action IN ('open_first', 'change', 'reopen')
ORDER BY k.store_key;

-- Overwritten attributes: every version of a store carries the current values.
UPDATE {{gold}}.dim_store AS d
SET phone = s.phone, manager_staff_id = s.manager_staff_id, manager_name = s.manager_name
FROM temp.pagila_scd_src_store AS s
WHERE d.store_id = s.store_id
  AND row(d.phone, d.manager_staff_id, d.manager_name)
      IS DISTINCT FROM row(s.phone, s.manager_staff_id, s.manager_name);
