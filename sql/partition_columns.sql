-- The columns of log_events with their types, collations, defaults, NOT NULL and CHECK
-- constraints: what a table needs to become its partition. Read from the catalog,
-- which takes no lock on log_events (CREATE TABLE ... LIKE would hold one to the end
-- of a long load, and stall other sessions' partition DDL and prune behind it).
SELECT string_agg(definition, ', ' ORDER BY position)
FROM (
    SELECT a.attnum AS position,
           format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
           || CASE WHEN a.attcollation <> t.typcollation
                   THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
           || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS definition
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'log_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 32768 + row_number() OVER (ORDER BY c.conname),
           format('CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c
    WHERE c.conrelid = 'log_events'::regclass AND c.contype = 'c'
) AS definitions
