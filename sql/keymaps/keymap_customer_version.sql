-- keymap_customer_version: persistent surrogate keys of the customer VERSIONS (SCD type 2, see gold
-- dim_customer). NEVER rebuilt, never deleted from, only appended.
-- Grain: one row per version of a customer ever opened in this star: (customer_id, valid_from).
-- Keys: customer_key (INTEGER surrogate of one version, PRIMARY KEY, >= 1), (customer_id, valid_from)
-- UNIQUE. Key -1 is reserved for the unknown member and is not stored.
-- Rule: a version opened for the first time gets max(customer_key) + 1, new keys handed out in
-- (customer_id, valid_from) order, so no key is ever reused or changed. A version that is opened
-- again (gold dropped, silver kept) gets its old key back. The rows are written by
-- gold dim_customer, which decides which versions to open: this model only makes sure the
-- table exists. first_run_id records the build that opened the version (lineage only).
CREATE TABLE IF NOT EXISTS {{silver}}.keymap_customer_version (
    customer_id   INTEGER   NOT NULL,
    valid_from    TIMESTAMP NOT NULL,
    customer_key  INTEGER   NOT NULL PRIMARY KEY CHECK (customer_key > 0),
    first_run_id  BIGINT,
    UNIQUE (customer_id, valid_from)
);
