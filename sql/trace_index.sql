-- The opt-in request-id index (`logctl schema --trace-index`): it lets `logctl trace`
-- find any request at once, at any time, whatever its id. It is not in the default set
-- because every load pays for it (random ids land all over a B-tree): `logctl bench
-- write-penalty` measures what it costs on your database ("logctl's default set +
-- request-id index"). Lines without a request id are left out. Building it locks out
-- loads (not reports) until it is done.
CREATE INDEX IF NOT EXISTS log_events_request_id_idx ON log_events (request_id)
    WHERE request_id IS NOT NULL;
