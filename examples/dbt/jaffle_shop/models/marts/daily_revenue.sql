select order_date, count(*) as orders, round(sum(amount), 2) as revenue
from {{ ref('orders') }}
where status <> 'returned'
group by 1
