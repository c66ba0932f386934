-- One row per source in the ledger: how many lines and bytes are committed, and
-- whether they form one stretch from the start (a killed run leaves a gap until
-- the next run fills it).
SELECT s.source_name,
       coalesce(max(r.end_line) - 1, 0)::bigint       AS lines,
       coalesce(max(r.end_offset), 0)::bigint         AS bytes,
       coalesce(sum(r.loaded_rows), 0)::bigint        AS loaded,
       coalesce(sum(r.rejected_lines), 0)::bigint     AS rejected,
       -- A source whose every load was rolled back has no range, and nothing of it is
       -- loaded: not complete.
       count(r.source_key) > 0
           AND sum(r.end_offset - r.start_offset) = max(r.end_offset) AS complete,
       max(r.committed_at)                            AS last_loaded_at
FROM logctl_sources s
LEFT JOIN logctl_ranges r ON r.source_key = s.source_key
GROUP BY s.source_key, s.source_name
ORDER BY max(r.committed_at) DESC NULLS LAST, s.source_name
