-- dim_date: incremental extension of gold dim_date (see dims/dim_date for the columns).
-- Adds the days that the rentals and payments restaged in this run need (temp
-- pagila_inc_stg_rental, pagila_inc_stg_payment), plus any day between them and the days already
-- there, so the calendar stays contiguous. Never removes a day: after deletes it may cover a few
-- more days at its ends than a full build from the same source would.
INSERT INTO {{gold}}.dim_date
WITH new_days AS (
    SELECT rental_date::DATE AS d FROM temp.pagila_inc_stg_rental
    UNION ALL
    SELECT return_date::DATE FROM temp.pagila_inc_stg_rental
    UNION ALL
    SELECT payment_date::DATE FROM temp.pagila_inc_stg_payment
),
bounds AS (
    SELECT
        least(min(n.d), (SELECT min(date) FROM {{gold}}.dim_date))    AS first_day,
        greatest(max(n.d), (SELECT max(date) FROM {{gold}}.dim_date)) AS last_day
    FROM new_days AS n
),
days AS (
    SELECT (b.first_day + r.range::INTEGER)::DATE AS d
    FROM bounds AS b,
         range(0, coalesce(b.last_day - b.first_day + 1, 0)::BIGINT) AS r
)
SELECT
    (year(d) * 10000 + month(d) * 100 + day(d))::INTEGER  AS date_key,
    d                                                     AS date,
    year(d)::INTEGER                                      AS year,
    quarter(d)::INTEGER                                   AS quarter,
    month(d)::INTEGER                                     AS month,
    monthname(d)                                          AS month_name,
    day(d)::INTEGER                                       AS day,
    isoyear(d)::INTEGER                                   AS iso_year,
    week(d)::INTEGER                                      AS iso_week,
    isodow(d)::INTEGER                                    AS day_of_week,
    dayname(d)                                            AS day_name,
    isodow(d) IN (6, 7)                                   AS is_weekend
FROM days
WHERE NOT EXISTS (SELECT 1 FROM {{gold}}.dim_date AS x WHERE x.date = days.d)
ORDER BY d;
