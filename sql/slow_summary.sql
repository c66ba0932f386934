-- Per service, over every request above the threshold (not only the listed ones):
-- how many, and the latency percentiles and maximum among them.
SELECT s.service_name,
       count(*) AS slow_requests,
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY l.latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY l.latency_ms) AS p99,
       max(l.latency_ms) AS max_latency_ms
FROM log_events l
JOIN services s ON s.service_id = l.service_id
WHERE l.latency_ms > $1
  AND ($2::timestamptz IS NULL OR l.created_at >= $2)
  AND ($3::timestamptz IS NULL OR l.created_at < $3)
  AND ($4::text IS NULL OR s.service_name = $4)
GROUP BY s.service_name
ORDER BY count(*) DESC, s.service_name
