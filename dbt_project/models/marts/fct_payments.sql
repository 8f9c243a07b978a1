-- Live payments (physically deleted ones excluded) with the payment type description.
with payments as (
    select * from {{ ref('payments_current') }}
    where is_deleted = {{ exigo_false() }}
),

payment_types as (
    select * from {{ ref('payment_types_current') }}
)

select
    p.payment_id,
    p.customer_id,
    p.order_id,
    p.payment_type_id,
    payment_type.payment_type_description as payment_type,
    p.payment_date,
    p.amount,
    p.currency_code,
    p.warehouse_id,
    p.credit_card_type_id,
    p.credit_card_number,
    p.modified_date,
    p.valid_from,
    p.batch_id
from payments p
left join payment_types payment_type
    on payment_type.payment_type_id = p.payment_type_id
