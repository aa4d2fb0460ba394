-- stg_payment: payments (all partitions of the partitioned Postgres table).
-- Grain: one row per payment. Key: payment_id.
-- Source: bronze payment. payment_date converted to naive UTC TIMESTAMP via epoch microseconds.
-- rental_id is kept as is: it may be NULL or point to a rental that does not exist, the
-- facts resolve such payments to the unknown members.
CREATE OR REPLACE TABLE {{silver}}.stg_payment AS
SELECT
    p.payment_id::INTEGER                     AS payment_id,
    p.customer_id::INTEGER                    AS customer_id,
    p.staff_id::INTEGER                       AS staff_id,
    p.rental_id::INTEGER                      AS rental_id,
    p.amount::DECIMAL(5,2)                    AS amount,
    make_timestamp(epoch_us(p.payment_date))  AS payment_date
FROM {{bronze}}.payment AS p;
