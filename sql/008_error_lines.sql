-- 008: the error lines' indexes, which `logctl errors` reads. An errors report groups the
-- messages of a window's error lines (analytics::rollup::is_error), which only the raw
-- rows hold. Without these indexes a day of a 10 M-row table is scanned for its 3% of
-- error lines (3.4 s); with the key alone they are found, but each costs a visit to its
-- own page of the table (2.4 s); holding the message in the index, they are read from
-- it alone (0.25 s). Only error lines enter them, at their right edge (their times rise),
-- so a load pays little for them: `logctl bench write-penalty` measures it.
--
-- An index entry must fit in a third of a page, so log_events_errors_idx holds the
-- error lines whose message has at most 2000 bytes (nearly all), and
-- log_events_long_errors_idx finds the others (and those without a message) by time.
-- sql/errors.sql repeats both predicates word for word, so that the planner can prove
-- its rows are in them.
CREATE INDEX log_events_errors_idx ON log_events (created_at)
    INCLUDE (service_id, request_id, message)
    WHERE (status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic'))
      AND octet_length(message) <= 2000;
CREATE INDEX log_events_long_errors_idx ON log_events (created_at)
    WHERE (status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic'))
      AND (octet_length(message) <= 2000) IS NOT TRUE;
