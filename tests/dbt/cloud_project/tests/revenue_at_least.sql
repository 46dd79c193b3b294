select * from {{ ref('customer_revenue') }} where revenue < {{ 100 if var('break', false) else 0 }}
