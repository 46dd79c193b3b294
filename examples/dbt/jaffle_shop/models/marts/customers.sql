select c.customer_id, c.first_name, c.last_name,
       count(o.order_id) as orders, round(coalesce(sum(o.amount), 0), 2) as lifetime_value,
       min(o.order_date) as first_order, max(o.order_date) as last_order
from {{ ref('stg_customers') }} c
left join {{ ref('orders') }} o using (customer_id)
group by 1, 2, 3
