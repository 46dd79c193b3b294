select *, {{ 'no_such_column' if var('break', false) else 'amount * 2' }} as doubled
from {{ ref('stg_orders') }}
