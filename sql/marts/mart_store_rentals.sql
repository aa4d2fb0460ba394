-- mart_store_rentals: rental activity per store.
-- Grain: one row per store that has at least one rental (store_key -1 appears only if some
-- rental's store is unknown). Key: store_key.
-- Columns: rentals (count), returns (returned rentals), open_rentals (not returned yet),
-- avg_rental_hours (mean duration of returned rentals, DECIMAL(18,2)), late_returns
-- (returned rentals with days_late > 0), payment_total (payments attached to those rentals).
-- Source: gold fact_rental, dim_store.
CREATE OR REPLACE TABLE {{gold}}.mart_store_rentals AS
SELECT
    fr.store_key,
    ds.store_id,
    ds.city,
    ds.country,
    ds.manager_name,
    count(*)::BIGINT                                              AS rentals,
    count(*) FILTER (WHERE fr.is_returned)::BIGINT                AS returns,
    count(*) FILTER (WHERE NOT fr.is_returned)::BIGINT            AS open_rentals,
    avg(fr.rental_hours)::DECIMAL(18,2)                           AS avg_rental_hours,
    count(*) FILTER (WHERE fr.days_late > 0)::BIGINT              AS late_returns,
    sum(fr.payment_total)::DECIMAL(18,2)                          AS payment_total
FROM {{gold}}.fact_rental AS fr
JOIN {{gold}}.dim_store AS ds ON ds.store_key = fr.store_key
GROUP BY fr.store_key, ds.store_id, ds.city, ds.country, ds.manager_name
ORDER BY fr.store_key;
