-- Live payments (physically deleted ones excluded) with the payment type description.
select
    p.payment_id,
    p.customer_id,
    p.order_id,
    p.payment_type_id,
    payment_type.{{ adapter.quote('PaymentTypeDescription') }} as payment_type,
    p.payment_date,
    p.amount,
    p.currency_code,
    p.warehouse_id,
    p.credit_card_type_id,
    p.credit_card_number,
    p.modified_date,
    p.valid_from,
    p.batch_id
from {{ ref('payments_current') }} p
left join {{ source('exigo_dbo', 'PaymentTypes') }} payment_type
    on payment_type.{{ adapter.quote('PaymentTypeID') }} = p.payment_type_id
where p.is_deleted = {{ exigo_false() }}
