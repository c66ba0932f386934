-- The slowest requests above a threshold. Filters and sorts on the typed, indexed
-- latency_ms column: the latency index is walked backwards and the scan stops after
-- $5 rows (NULL: all of them). $2 (since), $3 (until) and $4 (service) are optional
-- (NULL).
SELECT s.service_name, l.created_at, l.latency_ms, l.endpoint, l.method, l.status
FROM log_events l
JOIN services s ON s.service_id = l.service_id
WHERE l.latency_ms > $1
  AND ($2::timestamptz IS NULL OR l.created_at >= $2)
  AND ($3::timestamptz IS NULL OR l.created_at < $3)
  AND ($4::text IS NULL OR s.service_name = $4)
ORDER BY l.latency_ms DESC, l.created_at DESC, l.event_id
LIMIT $5
