-- Every status a customer entered, from customers_history (see macro exigo_status_changes).
{{ exigo_status_changes('customers', 'customer_status_id') }}
