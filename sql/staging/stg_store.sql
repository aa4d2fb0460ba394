-- stg_store: stores with their address and manager.
-- Grain: one row per store. Key: store_id. Source: bronze store, silver stg_address,
-- silver stg_staff (manager), both LEFT JOINed so a store is never dropped.
-- changed_at: the latest last_update of the store row and of its address (stg_address.changed_at),
-- naive UTC: when the store or its address last changed (dates a new dim_store version).
CREATE OR REPLACE TABLE {{silver}}.stg_store AS
SELECT
    st.store_id::INTEGER                      AS store_id,
    st.manager_staff_id::INTEGER              AS manager_staff_id,
    m.full_name                               AS manager_name,
    st.address_id::INTEGER                    AS address_id,
    a.address                                 AS address,
    a.address2                                AS address2,
    a.district                                AS district,
    a.postal_code                             AS postal_code,
    a.phone                                   AS phone,
    a.city                                    AS city,
    a.country                                 AS country,
    make_timestamp(epoch_us(st.last_update))  AS last_update,
    greatest(make_timestamp(epoch_us(st.last_update)), a.changed_at)
                                              AS changed_at
FROM {{bronze}}.store AS st
LEFT JOIN {{silver}}.stg_address AS a ON a.address_id = st.address_id
LEFT JOIN {{silver}}.stg_staff AS m ON m.staff_id = st.manager_staff_id;
