select c.customer_id, c.name, sum(o.amount) as revenue
from {{ ref('stg_customers') }} c join {{ ref('stg_orders') }} o using (customer_id)
group by 1, 2
