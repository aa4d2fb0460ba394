-- keymap_staff: persistent surrogate keys of the staff entity. NEVER rebuilt, only appended.
-- Grain: one row per staff_id ever seen by any build into this silver schema.
-- Keys: staff_id (natural key, PRIMARY KEY), staff_key (INTEGER surrogate, UNIQUE, >= 1).
-- Source: silver stg_staff.
-- Rule: a natural key seen for the first time gets max(staff_key) + 1, new keys handed out
-- in ascending staff_id order, so a rebuild (same or any later source) never changes the
-- key of an entity already mapped. Key -1 is reserved for the unknown member and is not stored.
-- first_run_id records the build that first saw the entity (lineage only).
-- SCD2 extension point: staff_key is the DURABLE key of the entity. A later snapshot step
-- can add per-version rows (dbt snapshot style: dbt_scd_id, dbt_valid_from, dbt_valid_to)
-- with their own version key while staff_key keeps identifying the entity across versions.
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_staff (
    staff_id     INTEGER NOT NULL PRIMARY KEY,
    staff_key    INTEGER NOT NULL UNIQUE CHECK (staff_key > 0),
    first_run_id BIGINT
);
INSERT INTO {{silver}}.keymap_staff (staff_id, staff_key, first_run_id)
SELECT
    n.staff_id,
    (SELECT coalesce(max(k.staff_key), 0) FROM {{silver}}.keymap_staff AS k)
        + row_number() OVER (ORDER BY n.staff_id),
    {{run_id}}
FROM (
    SELECT DISTINCT s.staff_id
    FROM {{silver}}.stg_staff AS s
    WHERE s.staff_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {{silver}}.keymap_staff AS m WHERE m.staff_id = s.staff_id)
) AS n;
