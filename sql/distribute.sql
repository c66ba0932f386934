-- Citus: services is small and joined by every report, so every worker keeps a copy
-- (a reference table). log_events is distributed by service_id here, as logctl first
-- did; 009_spread.sql redistributes it by a key each batch gets, which spreads the rows
-- over the workers evenly whatever the services are (new databases run both).
SELECT create_reference_table('services');
SELECT create_distributed_table('log_events', 'service_id');
