-- Statements that give the table named $1 the indexes and keys of log_events (foreign
-- keys aside), unnamed so that PostgreSQL names them as ATTACH PARTITION would. ATTACH
-- then finds them built and only links them to the parent's.
SELECT CASE
           WHEN c.oid IS NOT NULL
               THEN format('ALTER TABLE %I ADD %s', $1::text, pg_get_constraintdef(c.oid))
           ELSE format('CREATE %sINDEX ON %I %s',
                       CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, $1::text,
                       regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? ON ONLY \S+ ', ''))
       END
FROM pg_index i
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                         AND c.contype IN ('p', 'u', 'x')
WHERE i.indrelid = 'log_events'::regclass
ORDER BY i.indexrelid
