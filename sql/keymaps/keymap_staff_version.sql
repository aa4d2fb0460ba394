-- keymap_staff_version: persistent surrogate keys of the staff VERSIONS (SCD type 2, see gold
-- dim_staff). NEVER rebuilt, never deleted from, only appended.
-- Grain: one row per version of a staff ever opened in this star: (staff_id, valid_from).
-- Keys: staff_key (INTEGER surrogate of one version, PRIMARY KEY, >= 1), (staff_id, valid_from)
-- UNIQUE. Key -1 is reserved for the unknown member and is not stored.
-- Rule: a version opened for the first time gets max(staff_key) + 1, new keys handed out in
-- (staff_id, valid_from) order, so no key is ever reused or changed. A version that is opened
-- again (gold dropped, silver kept) gets its old key back. The rows are written by
-- gold dim_staff, which decides which versions to open: this model only makes sure the
-- table exists. first_run_id records the build that opened the version (lineage only).
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_staff_version (
    staff_id      INTEGER   NOT NULL,
    valid_from    TIMESTAMP NOT NULL,
    staff_key     INTEGER   NOT NULL PRIMARY KEY CHECK (staff_key > 0),
    first_run_id  BIGINT,
    UNIQUE (staff_id, valid_from)
);
