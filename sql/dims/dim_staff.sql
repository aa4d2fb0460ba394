-- dim_staff: staff members with their store and address, SCD type 2 (history kept).
-- Grain: one row per staff member VERSION plus the unknown member.
-- Keys: staff_key (INTEGER surrogate of the version, from silver keymap_staff_version, never
-- reused), staff_id (natural key, NULL for the unknown member). staff_key -1 = unknown.
-- No password, no picture.
-- History follows dbt's snapshot conventions: a version holds from valid_from (inclusive) to
-- valid_to (exclusive), valid_to is NULL for the current version and is_current =
-- (valid_to IS NULL). The versions of a staff member are contiguous: each valid_to is the next
-- valid_from, so every instant after 1900-01-01 falls in exactly one version.
-- Tracked attributes (a change closes the current version and opens a new one with a new key):
--   active, store_id, and the address as the dimension shows it: city, country.
-- Overwritten attributes (type 1: all versions of the staff member take the new value, no new
-- version): first_name, last_name, full_name, email, username.
-- valid_from: the first version of a staff member starts at 1900-01-01 00:00:00 (the beginning of
-- time), so every fact finds a version however early it is dated. A later version starts at the
-- change's time: the latest last_update (naive UTC) of the staff row and of its address, city and
-- country rows, but at least 1 microsecond after the version it replaces starts.
-- Deletes: a staff member who left the source keeps the history, the current version is closed at
-- the run's time (UTC) and marked is_deleted. On a return a new version opens at that same instant
-- (no gap). is_deleted is false on every other row.
-- Facts join the version whose [valid_from, valid_to) holds the fact's timestamp.
-- Runs in both modes on temp pagila_scd_scope_staff, the staff members to merge: all of them in a
-- full build (dims/scd2_scope_full), the changed ones in an incremental build
-- (incremental/scd2_scope). A full build therefore keeps the recorded history and adds to it
-- exactly what an incremental build would. What was decided is left in temp pagila_scd_staff
-- (staff_id, action, switch_at): the incremental facts re-point facts of that staff member dated at or
-- after switch_at.
-- Source: silver stg_staff, stg_address, keymap_staff_version, gold dim_staff itself.
CREATE TABLE IF NOT EXISTS {{gold}}.dim_staff (
    staff_key   INTEGER NOT NULL,
    staff_id    INTEGER,
    first_name  VARCHAR,
    last_name   VARCHAR,
    full_name   VARCHAR,
    email       VARCHAR,
    username    VARCHAR,
    active      BOOLEAN,
    store_id    INTEGER,
    city        VARCHAR,
    country     VARCHAR,
    valid_from  TIMESTAMP,
    valid_to    TIMESTAMP,
    is_current  BOOLEAN,
    is_deleted  BOOLEAN
);

-- A dim_staff built before history was kept (one row per staff) becomes the first versions.
ALTER TABLE {{gold}}.dim_staff ADD COLUMN IF NOT EXISTS valid_from TIMESTAMP DEFAULT TIMESTAMP '1900-01-01';
ALTER TABLE {{gold}}.dim_staff ADD COLUMN IF NOT EXISTS valid_to TIMESTAMP;
ALTER TABLE {{gold}}.dim_staff ADD COLUMN IF NOT EXISTS is_current BOOLEAN DEFAULT true;
ALTER TABLE {{gold}}.dim_staff ADD COLUMN IF NOT EXISTS is_deleted BOOLEAN DEFAULT false;

INSERT INTO {{gold}}.dim_staff BY NAME
SELECT -1 AS staff_key, 'Unknown' AS first_name, 'Unknown' AS last_name, 'Unknown' AS full_name,
       'Unknown' AS city, 'Unknown' AS country, TIMESTAMP '1900-01-01' AS valid_from,
       true AS is_current, false AS is_deleted
WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_staff WHERE staff_key = -1);

-- Every version in the dimension has its key in the key map (only ever adds rows for a
-- dimension that predates the key map).
INSERT INTO {{silver}}.keymap_staff_version (staff_id, valid_from, staff_key, first_run_id)
SELECT d.staff_id, d.valid_from, d.staff_key, {{run_id}}
FROM {{gold}}.dim_staff AS d
WHERE d.staff_key > 0
  AND d.staff_id IN (SELECT staff_id FROM temp.pagila_scd_scope_staff)
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_staff_version AS k
                  WHERE k.staff_key = d.staff_key);

-- The source state of the staff members in scope.
CREATE OR REPLACE TEMP TABLE pagila_scd_src_staff AS
SELECT
    x.staff_id,
    x.first_name,
    x.last_name,
    x.full_name,
    x.email,
    x.username,
    x.active,
    x.store_id,
    a.city,
    a.country,
    coalesce(greatest(x.last_update, a.changed_at), make_timestamp(epoch_us(now()))) AS changed_at
FROM (SELECT * FROM {{silver}}.stg_staff
      WHERE staff_id IN (SELECT staff_id FROM temp.pagila_scd_scope_staff)) AS x
LEFT JOIN {{silver}}.stg_address AS a ON a.address_id = x.address_id;

-- One decision per staff member whose versions change:
--   open_first  never seen: first version from 1900-01-01
--   change      a tracked attribute differs from the current version: close it, open a new one
--   delete      gone from the source: close the current version and mark it deleted
--   reopen      back after a delete: new version from the delete's instant
-- switch_at is the instant the current version closes and/or the new one opens.
CREATE OR REPLACE TEMP TABLE pagila_scd_staff AS
WITH latest AS (
    SELECT d.*
    FROM {{gold}}.dim_staff AS d
    WHERE d.staff_id IN (SELECT staff_id FROM temp.pagila_scd_scope_staff)
    QUALIFY row_number() OVER (PARTITION BY d.staff_id ORDER BY d.valid_from DESC) = 1
),
decided AS (
    SELECT
        coalesce(s.staff_id, l.staff_id) AS staff_id,
        CASE
            WHEN l.staff_id IS NULL THEN 'open_first'
            WHEN s.staff_id IS NULL THEN CASE WHEN l.is_current THEN 'delete' END
            WHEN NOT l.is_current THEN 'reopen'
            WHEN row(s.active, s.store_id, s.city, s.country)
                 IS DISTINCT FROM
                 row(l.active, l.store_id, l.city, l.country)
                THEN 'change'
        END AS action,
        s.changed_at,
        l.valid_from AS latest_from,
        l.valid_to   AS latest_to
    FROM temp.pagila_scd_src_staff AS s
    FULL OUTER JOIN latest AS l ON l.staff_id = s.staff_id
)
SELECT
    staff_id,
    action,
    CASE action
        WHEN 'open_first' THEN TIMESTAMP '1900-01-01'
        WHEN 'change' THEN greatest(changed_at, latest_from + INTERVAL 1 MICROSECOND)
        WHEN 'delete' THEN greatest(make_timestamp(epoch_us(now())), latest_from + INTERVAL 1 MICROSECOND)
        WHEN 'reopen' THEN latest_to
    END AS switch_at
FROM decided
WHERE action IS NOT NULL;

-- Keys of the new versions: max + 1 in (staff_id, valid_from) order, old key if known.
INSERT INTO {{silver}}.keymap_staff_version (staff_id, valid_from, staff_key, first_run_id)
SELECT
    a.staff_id,
    a.switch_at,
    (SELECT coalesce(max(k.staff_key), 0) FROM {{silver}}.keymap_staff_version AS k)
        + row_number() OVER (ORDER BY a.staff_id, a.switch_at),
    {{run_id}}
FROM temp.pagila_scd_staff AS a
WHERE a.action <> 'delete'
  AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_staff_version AS k
                  WHERE k.staff_id = a.staff_id AND k.valid_from = a.switch_at);

-- Close the current versions that changed or were deleted.
UPDATE {{gold}}.dim_staff AS d
SET valid_to = a.switch_at, is_current = false, is_deleted = (a.action = 'delete')
FROM temp.pagila_scd_staff AS a
WHERE d.staff_id = a.staff_id AND d.is_current AND a.action IN ('change', 'delete');

-- Open the new versions.
INSERT INTO {{gold}}.dim_staff BY NAME
SELECT
    k.staff_key,
    s.* EXCLUDE (changed_at),
    a.switch_at     AS valid_from,
    NULL::TIMESTAMP AS valid_to,
    true            AS is_current,
    false           AS is_deleted
FROM temp.pagila_scd_staff AS a
JOIN temp.pagila_scd_src_staff AS s ON s.staff_id = a.staff_id
JOIN {{silver}}.keymap_staff_version AS k ON k.staff_id = a.staff_id AND k.valid_from = a.switch_at
WHERE a.action IN ('open_first', 'change', 'reopen')
ORDER BY k.staff_key;

-- Overwritten attributes: every version of a staff carries the current values.
UPDATE {{gold}}.dim_staff AS d
SET first_name = s.first_name, last_name = s.last_name, full_name = s.full_name, email = s.email, username = s.username
FROM temp.pagila_scd_src_staff AS s
WHERE d.staff_id = s.staff_id
  AND row(d.first_name, d.last_name, d.full_name, d.email, d.username)
      IS DISTINCT FROM row(s.first_name, s.last_name, s.full_name, s.email, s.username);
