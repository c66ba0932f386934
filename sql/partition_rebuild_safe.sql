-- Whether the new partitions of log_events can be filled detached and attached at the
-- end of a load. Not when rows must pass the user's row triggers (a detached table has
-- none), when identity or generated columns would not carry over to it, or when a
-- publication would miss its rows or publish the staging table's.
SELECT NOT EXISTS (
           SELECT 1 FROM pg_trigger
           WHERE tgrelid = 'log_events'::regclass AND NOT tgisinternal)
   AND NOT EXISTS (
           SELECT 1 FROM pg_attribute
           WHERE attrelid = 'log_events'::regclass AND attnum > 0 AND NOT attisdropped
             AND (attidentity <> '' OR attgenerated <> ''))
   AND NOT EXISTS (SELECT 1 FROM pg_publication)
