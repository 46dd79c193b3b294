select ordered_on, sum(doubled) as doubled_total from {{ ref('orders_enriched') }} group by 1
