-- The error lines of a window, as analytics::rollup::is_error counts them (a server
-- error, or logged at error level or above), with the report filters: the errors report
-- groups them by their message's signature. Two branches, each the predicate of one of
-- migration 008's partial indexes word for word, so that the planner can prove their
-- rows are in it: messages of up to 2000 bytes, read from log_events_errors_idx alone
-- (it holds them, so the table's pages are not visited), and the rest, found with
-- log_events_long_errors_idx and read from the table.
SELECT l.created_at, l.service_id, l.message, l.request_id
FROM log_events l
WHERE (l.status >= 500 OR l.level IN ('error', 'fatal', 'critical', 'panic'))
  AND octet_length(l.message) <= 2000
  AND {{filter}}
UNION ALL
SELECT l.created_at, l.service_id, l.message, l.request_id
FROM log_events l
WHERE (l.status >= 500 OR l.level IN ('error', 'fatal', 'critical', 'panic'))
  AND (octet_length(l.message) <= 2000) IS NOT TRUE
  AND {{filter}}
