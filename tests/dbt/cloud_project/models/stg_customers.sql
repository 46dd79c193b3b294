select customer_id, name from {{ source('crm', 'raw_customers') }}
