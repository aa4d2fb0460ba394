-- scd2_scope: which entities the SCD2 dimensions merge in an incremental build.
-- Creates temp pagila_scd_scope_customer, pagila_scd_scope_store and pagila_scd_scope_staff (one
-- natural key per row), read by the same dims/dim_customer, dim_store and dim_staff as in a full
-- build (where dims/scd2_scope_full puts every entity in scope):
--   customers whose staged row changed (temp pagila_chg_customer, deletes included) or whose
--   address changed (temp pagila_chg_address, which also covers city and country renames),
--   staff members likewise (temp pagila_chg_staff, pagila_chg_address),
--   stores whose staged row changed (temp pagila_chg_store, which already follows the address).
-- Source: temp pagila_chg_*, silver stg_customer, stg_staff.
CREATE OR REPLACE TEMP TABLE pagila_scd_scope_customer AS
SELECT customer_id FROM temp.pagila_chg_customer
UNION
SELECT c.customer_id FROM {{silver}}.stg_customer AS c
WHERE c.address_id IN (SELECT address_id FROM temp.pagila_chg_address);

CREATE OR REPLACE TEMP TABLE pagila_scd_scope_store AS
SELECT store_id FROM temp.pagila_chg_store;

CREATE OR REPLACE TEMP TABLE pagila_scd_scope_staff AS
SELECT staff_id FROM temp.pagila_chg_staff
UNION
SELECT s.staff_id FROM {{silver}}.stg_staff AS s
WHERE s.address_id IN (SELECT address_id FROM temp.pagila_chg_address);
