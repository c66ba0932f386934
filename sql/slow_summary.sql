-- Per service, over every request above the threshold ($11) that the report filters
-- keep ($1 to $10, see report_filter.sql), not only the listed ones: how many, and the
-- latency percentiles and maximum among them. With a threshold of -1: over all of its
-- requests (the events with a latency).
SELECT s.service_name,
       count(*) AS requests,
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY l.latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY l.latency_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY l.latency_ms) AS p99,
       max(l.latency_ms) AS max_latency_ms
FROM log_events l
JOIN services s ON s.service_id = l.service_id
WHERE l.latency_ms > $11
  AND {{filter}}
GROUP BY s.service_name
ORDER BY count(*) DESC, s.service_name
