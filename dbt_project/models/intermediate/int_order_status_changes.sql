-- Every status an order entered, from orders_history (see macro exigo_status_changes).
{{ exigo_status_changes('orders', 'order_status_id') }}
