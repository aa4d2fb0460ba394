-- cleanup: drops the temp tables the models created (working sets of one build: scopes, restaged
-- rows, changed keys, SCD2 decisions). They live on the connection, not in a schema, and would
-- otherwise hold memory until the next build. Runs last in both modes (IF EXISTS: a full build
-- creates only some of them). Never touches the orchestrator's pagila_delta_* and
-- pagila_deleted_* tables.
DROP TABLE IF EXISTS temp.pagila_chg_actor;
DROP TABLE IF EXISTS temp.pagila_chg_address;
DROP TABLE IF EXISTS temp.pagila_chg_category;
DROP TABLE IF EXISTS temp.pagila_chg_customer;
DROP TABLE IF EXISTS temp.pagila_chg_film;
DROP TABLE IF EXISTS temp.pagila_chg_film_actor;
DROP TABLE IF EXISTS temp.pagila_chg_film_category;
DROP TABLE IF EXISTS temp.pagila_chg_film_duration;
DROP TABLE IF EXISTS temp.pagila_chg_inventory;
DROP TABLE IF EXISTS temp.pagila_chg_payment;
DROP TABLE IF EXISTS temp.pagila_chg_payment_rental;
DROP TABLE IF EXISTS temp.pagila_chg_rental;
DROP TABLE IF EXISTS temp.pagila_chg_staff;
DROP TABLE IF EXISTS temp.pagila_chg_store;
DROP TABLE IF EXISTS temp.pagila_inc_aff_payment;
DROP TABLE IF EXISTS temp.pagila_inc_aff_rental;
DROP TABLE IF EXISTS temp.pagila_inc_films_actor;
DROP TABLE IF EXISTS temp.pagila_inc_films_category;
DROP TABLE IF EXISTS temp.pagila_inc_keys_address;
DROP TABLE IF EXISTS temp.pagila_inc_keys_film;
DROP TABLE IF EXISTS temp.pagila_inc_keys_film_actor;
DROP TABLE IF EXISTS temp.pagila_inc_keys_film_category;
DROP TABLE IF EXISTS temp.pagila_inc_keys_rental;
DROP TABLE IF EXISTS temp.pagila_inc_keys_store;
DROP TABLE IF EXISTS temp.pagila_inc_old_bridge_film_category;
DROP TABLE IF EXISTS temp.pagila_inc_old_fact_rental;
DROP TABLE IF EXISTS temp.pagila_inc_old_fact_sales;
DROP TABLE IF EXISTS temp.pagila_inc_old_film;
DROP TABLE IF EXISTS temp.pagila_inc_old_payment;
DROP TABLE IF EXISTS temp.pagila_inc_stg_actor;
DROP TABLE IF EXISTS temp.pagila_inc_stg_address;
DROP TABLE IF EXISTS temp.pagila_inc_stg_category;
DROP TABLE IF EXISTS temp.pagila_inc_stg_customer;
DROP TABLE IF EXISTS temp.pagila_inc_stg_film;
DROP TABLE IF EXISTS temp.pagila_inc_stg_film_actor;
DROP TABLE IF EXISTS temp.pagila_inc_stg_film_category;
DROP TABLE IF EXISTS temp.pagila_inc_stg_inventory;
DROP TABLE IF EXISTS temp.pagila_inc_stg_payment;
DROP TABLE IF EXISTS temp.pagila_inc_stg_rental;
DROP TABLE IF EXISTS temp.pagila_inc_stg_staff;
DROP TABLE IF EXISTS temp.pagila_inc_stg_store;
DROP TABLE IF EXISTS temp.pagila_scd_customer;
DROP TABLE IF EXISTS temp.pagila_scd_scope_customer;
DROP TABLE IF EXISTS temp.pagila_scd_scope_staff;
DROP TABLE IF EXISTS temp.pagila_scd_scope_store;
DROP TABLE IF EXISTS temp.pagila_scd_src_customer;
DROP TABLE IF EXISTS temp.pagila_scd_src_staff;
DROP TABLE IF EXISTS temp.pagila_scd_src_store;
DROP TABLE IF EXISTS temp.pagila_scd_staff;
DROP TABLE IF EXISTS temp.pagila_scd_store;
