-- Live customers as they are now, with status/type descriptions and their enroller and sponsor.
with customers as (
    select * from {{ ref('customers_current') }}
    where is_deleted = {{ exigo_false() }}
),

customer_types as (
    select * from {{ ref('customer_types_current') }}
),

customer_statuses as (
    select * from {{ ref('customer_statuses_current') }}
)

select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.company,
    c.email,
    c.phone,
    c.customer_type_id,
    customer_type.customer_type_description as customer_type,
    c.customer_status_id,
    customer_status.customer_status_description as customer_status,
    c.rank_id,
    c.enroller_id,
    {{ dbt.concat(["enroller.first_name", "' '", "enroller.last_name"]) }} as enroller_name,
    c.sponsor_id,
    {{ dbt.concat(["sponsor.first_name", "' '", "sponsor.last_name"]) }} as sponsor_name,
    c.main_city,
    c.main_state,
    c.main_zip,
    c.main_country,
    c.currency_code,
    c.language_id,
    c.created_date,
    c.modified_date,
    c.valid_from,
    c.batch_id
from customers c
left join customer_types customer_type
    on customer_type.customer_type_id = c.customer_type_id
left join customer_statuses customer_status
    on customer_status.customer_status_id = c.customer_status_id
left join customers enroller
    on enroller.customer_id = c.enroller_id
left join customers sponsor
    on sponsor.customer_id = c.sponsor_id
