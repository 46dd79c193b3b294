select count(*) as payments from {{ source('raw', 'payments') }}
