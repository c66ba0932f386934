-- Citus: services is small and joined by every report, so every worker keeps a copy
-- (a reference table). log_events is distributed by service_id: all of a service's
-- events live on one shard, so `slow --service` reads one shard, the per-service
-- summary is computed on the workers without moving rows, and loads spread over the
-- workers by service (a service much busier than the others makes its shard bigger).
SELECT create_reference_table('services');
SELECT create_distributed_table('log_events', 'service_id');
