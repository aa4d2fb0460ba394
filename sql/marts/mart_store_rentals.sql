-- mart_store_rentals: rental activity per store version.
-- Grain: one row per store_key with at least one rental. store_key is a version of the store
-- (dim_store is SCD2): a store that moved has one row per version that has rentals (rentals are
-- counted under the version valid at rental_date), store_id identifies the store across them.
-- store_key -1 appears only if some rental's store is unknown. Key: store_key.
-- Columns: store_id, city, country, manager_name (from the dim_store version), rentals (count),
-- returns (returned rentals), open_rentals (not returned yet), avg_rental_hours (mean duration of
-- returned rentals, DECIMAL(18,2), = rental_hours_total / returns), late_returns (returned
-- rentals with days_late > 0), payment_total (payments attached to those rentals),
-- rental_hours_total (DECIMAL(38,6) sum of rental_hours of the returned rentals: additive, so
-- averages roll up across stores and the incremental build can maintain the mean).
-- Source: gold fact_rental, dim_store. incremental/mart_store_rentals maintains the same rows.
CREATE OR REPLACE TABLE {{gold}}.mart_store_rentals AS
WITH per_store AS (
    SELECT
        fr.store_key,
        count(*)::BIGINT                                              AS rentals,
        count_if(fr.is_returned)::BIGINT                              AS returns,
        count_if(NOT fr.is_returned)::BIGINT                          AS open_rentals,
        count_if(fr.days_late > 0)::BIGINT                            AS late_returns,
        sum(fr.payment_total)::DECIMAL(18,2)                          AS payment_total,
        coalesce(sum(fr.rental_hours), 0)::DECIMAL(38,6)              AS rental_hours_total
    FROM {{gold}}.fact_rental AS fr
    GROUP BY fr.store_key
)
SELECT
    p.store_key,
    ds.store_id,
    ds.city,
    ds.country,
    ds.manager_name,
    p.rentals,
    p.returns,
    p.open_rentals,
    CASE WHEN p.returns > 0 THEN (p.rental_hours_total / p.returns)::DECIMAL(18,2) END
                                                                  AS avg_rental_hours,
    p.late_returns,
    p.payment_total,
    p.rental_hours_total
FROM per_store AS p
JOIN {{gold}}.dim_store AS ds ON ds.store_key = p.store_key
ORDER BY p.store_key;
