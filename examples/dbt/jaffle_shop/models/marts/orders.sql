-- One row per order with its payments, loaded one window at a time: the flow passes its
-- start_date/end_date (a Schedule's window, or a backfill's) as vars. Re-running a window
-- replaces that window's rows (delete+insert on order_id): backfills are idempotent.
{{ config(materialized='incremental', unique_key='order_id',
          incremental_strategy='delete+insert') }}
select o.order_id, o.customer_id, o.order_date, o.status,
       round(coalesce(sum(p.amount), 0), 2) as amount, count(p.payment_id) as payments
from {{ ref('stg_orders') }} o
left join {{ ref('stg_payments') }} p using (order_id)
where o.order_date >= cast('{{ var("start_date") }}' as date)
  and o.order_date < cast('{{ var("end_date") }}' as date)
group by 1, 2, 3, 4
