-- dim_date: calendar dimension.
-- Grain: one row per calendar day (UTC), contiguous from the earliest to the latest day on
-- which any rental started, any rental was returned or any payment was made, plus the
-- unknown member. Key: date_key = yyyymmdd INTEGER (a smart key, stable by construction,
-- so no key map is needed). date_key -1 = unknown / not applicable (e.g. not returned yet).
-- Source: silver stg_rental, stg_payment.
-- day_of_week is ISO: 1 = Monday ... 7 = Sunday. iso_week/iso_year follow ISO 8601.
CREATE OR REPLACE TABLE {{gold}}.dim_date AS
WITH bounds AS (
    SELECT min(d) AS first_day, max(d) AS last_day
    FROM (
        SELECT rental_date::DATE AS d FROM {{silver}}.stg_rental
        UNION ALL
        SELECT return_date::DATE FROM {{silver}}.stg_rental
        UNION ALL
        SELECT payment_date::DATE FROM {{silver}}.stg_payment
    ) AS all_days
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
UNION ALL
SELECT -1, NULL::DATE, NULL, NULL, NULL, 'Unknown', NULL, NULL, NULL, NULL, 'Unknown', NULL
ORDER BY date_key;
