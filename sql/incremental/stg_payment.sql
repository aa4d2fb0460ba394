-- stg_payment: incremental upsert of silver stg_payment (see staging/stg_payment for the rows).
-- Restages the payments read in this run (temp pagila_delta_payment, pagila_deleted_payment) and
-- replaces only the rows that differ from the staged ones, so a payment read again by the lookback
-- window stays as it is.
-- Leaves temp pagila_chg_payment(payment_id): payments inserted, updated or deleted, and
-- temp pagila_chg_payment_rental(rental_id): the rentals those payments referenced before and
-- after the change (their payment_count and payment_total in fact_rental move).
CREATE OR REPLACE TEMP TABLE pagila_inc_stg_payment AS
SELECT
    p.payment_id::INTEGER                     AS payment_id,
    p.customer_id::INTEGER                    AS customer_id,
    p.staff_id::INTEGER                       AS staff_id,
    p.rental_id::INTEGER                      AS rental_id,
    p.amount::DECIMAL(5,2)                    AS amount,
    make_timestamp(epoch_us(p.payment_date))  AS payment_date
FROM temp.pagila_delta_payment AS p;

CREATE OR REPLACE TEMP TABLE pagila_inc_old_payment AS
SELECT * FROM {{silver}}.stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_delta_payment
                     UNION ALL
                     SELECT payment_id FROM temp.pagila_deleted_payment);

CREATE OR REPLACE TEMP TABLE pagila_chg_payment AS
-- the keys whose row is new, gone, or different in a column (NULLs equal)
SELECT coalesce(new_row.payment_id, old_row.payment_id) AS payment_id
FROM temp.pagila_inc_stg_payment AS new_row
FULL JOIN temp.pagila_inc_old_payment AS old_row ON old_row.payment_id = new_row.payment_id
WHERE new_row IS DISTINCT FROM old_row;

CREATE OR REPLACE TEMP TABLE pagila_chg_payment_rental AS
SELECT rental_id FROM temp.pagila_inc_old_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_chg_payment) AND rental_id IS NOT NULL
UNION
SELECT rental_id FROM temp.pagila_inc_stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_chg_payment) AND rental_id IS NOT NULL;

DELETE FROM {{silver}}.stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_chg_payment);

INSERT INTO {{silver}}.stg_payment
SELECT * FROM temp.pagila_inc_stg_payment
WHERE payment_id IN (SELECT payment_id FROM temp.pagila_chg_payment);
