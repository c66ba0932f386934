-- Every line of one request, in time order: by the request_id column for an id that is
-- a UUID ($1), or by the text logctl keeps in metadata for one that is not ($2); one
-- of the two is NULL, and the plan keeps only the other's condition, so the request-id
-- index serves $1 when there is one. $3 and $4 bound the time when not NULL (the BRIN
-- index on created_at narrows it).
SELECT l.created_at, s.service_name, l.level, l.status, l.latency_ms, l.method,
       l.endpoint, l.message
FROM log_events l
JOIN services s ON s.service_id = l.service_id
WHERE ($1::uuid IS NULL OR l.request_id = $1)
  AND ($2::text IS NULL OR (l.request_id IS NULL AND l.metadata ->> 'request_id' = $2))
  AND ($3::timestamptz IS NULL OR l.created_at >= $3)
  AND ($4::timestamptz IS NULL OR l.created_at < $4)
ORDER BY l.created_at, l.event_id
