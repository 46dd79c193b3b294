-- One row per order, loaded one window at a time: a re-run of the same window replaces
-- that window's rows (delete+insert on order_id), so backfills are idempotent.
{{ config(materialized='incremental', unique_key='order_id',
          incremental_strategy='delete+insert') }}
select order_id, customer_id, order_date, amount
from {{ ref('stg_orders') }}
where order_date >= cast('{{ var("start_date") }}' as date)
  and order_date < cast('{{ var("end_date") }}' as date)
