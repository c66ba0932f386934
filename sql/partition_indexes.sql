-- Statements that give the table named $1 the indexes and keys of log_events (foreign
-- keys aside), unnamed so that PostgreSQL names them as ATTACH PARTITION would. ATTACH
-- then finds them built and only links them. An index this cannot reproduce exactly
-- (one in a tablespace of its own, or a definition not in the expected form) is left
-- out, and ATTACH builds it.
SELECT CASE
           WHEN c.oid IS NOT NULL
               THEN format('ALTER TABLE %I ADD %s', $1::text, pg_get_constraintdef(c.oid))
           ELSE format('CREATE %sINDEX ON %I %s',
                       CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, $1::text,
                       substr(d.definition, length(d.prefix) + 1))
       END
FROM pg_index i
JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = x.relnamespace
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                         AND c.contype IN ('p', 'u', 'x')
CROSS JOIN LATERAL (
    SELECT pg_get_indexdef(i.indexrelid) AS definition,
           format('CREATE %sINDEX %I ON ONLY %I.%I ',
                  CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                  x.relname, n.nspname, 'log_events') AS prefix
) AS d
WHERE i.indrelid = 'log_events'::regclass
  AND x.reltablespace = 0
  AND (c.oid IS NOT NULL OR starts_with(d.definition, d.prefix))
ORDER BY i.indexrelid
