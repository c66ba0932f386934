-- The slowest requests above a threshold ($11), at most $12, that the report filters
-- keep ($1 to $10, see report_filter.sql). Filters and sorts on the typed, indexed
-- latency_ms column: the latency index is walked backwards and the scan stops after
-- $12 rows.
SELECT s.service_name, l.created_at, l.latency_ms, l.endpoint, l.method, l.status
FROM log_events l
JOIN services s ON s.service_id = l.service_id
WHERE l.latency_ms > $11
  AND {{filter}}
ORDER BY l.latency_ms DESC, l.created_at DESC, l.event_id
LIMIT $12
