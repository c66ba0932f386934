-- The error lines of a window, as analytics::rollup::is_error counts them (a server
-- error, or logged at error level or above), with the report filters: the errors report
-- groups them by their message's signature.
SELECT l.created_at, l.service_id, l.message, l.request_id
FROM log_events l
WHERE (l.status >= 500 OR l.level IN ('error', 'fatal', 'critical', 'panic'))
  AND {{filter}}
