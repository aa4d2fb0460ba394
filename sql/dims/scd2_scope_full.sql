-- scd2_scope_full: which entities the SCD2 dimensions merge in a full build: all of them.
-- Creates temp pagila_scd_scope_customer, pagila_scd_scope_store and pagila_scd_scope_staff
-- (one natural key per row): every entity in silver staging plus every entity that ever had a
-- version (silver keymap_*_version), so the ones that left the source are found and closed.
-- The incremental build creates the same tables with only the changed entities
-- (incremental/scd2_scope), then runs the same dims/dim_customer, dim_store and dim_staff.
-- Source: silver stg_customer, stg_store, stg_staff, keymap_customer_version,
-- keymap_store_version, keymap_staff_version.
CREATE OR REPLACE TEMP TABLE pagila_scd_scope_customer AS
SELECT customer_id FROM {{silver}}.stg_customer WHERE customer_id IS NOT NULL
UNION
SELECT customer_id FROM {{silver}}.keymap_customer_version;

CREATE OR REPLACE TEMP TABLE pagila_scd_scope_store AS
SELECT store_id FROM {{silver}}.stg_store WHERE store_id IS NOT NULL
UNION
SELECT store_id FROM {{silver}}.keymap_store_version;

CREATE OR REPLACE TEMP TABLE pagila_scd_scope_staff AS
SELECT staff_id FROM {{silver}}.stg_staff WHERE staff_id IS NOT NULL
UNION
SELECT staff_id FROM {{silver}}.keymap_staff_version;
