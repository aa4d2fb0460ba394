-- stg_actor: actors.
-- Grain: one row per actor. Key: actor_id. Source: bronze actor.
CREATE OR REPLACE TABLE {{silver}}.stg_actor AS
SELECT
    a.actor_id::INTEGER                                   AS actor_id,
    trim(a.first_name)                                    AS first_name,
    trim(a.last_name)                                     AS last_name,
    concat_ws(' ', trim(a.first_name), trim(a.last_name)) AS full_name,
    make_timestamp(epoch_us(a.last_update))               AS last_update
FROM {{bronze}}.actor AS a;
