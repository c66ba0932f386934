-- The reports' window and filters over the raw rows of log_events (as l), shared by the
-- report queries that read them, which number their own parameters after these ten:
-- $1, $2  the window [from, until), which the BRIN index on created_at narrows;
-- $3      service names (NULL: every service);
-- $4      a LIKE pattern over routes (NULL: every route);
-- $5, $6  status codes and status classes (5 for 5xx); both empty: every status;
-- $7      levels, lower-case (empty: every level);
-- $8      methods, upper-case (empty: every method);
-- $9, $10 metadata paths ('{a,b}') and the text each must hold there.
-- Each condition a report leaves unset folds away when the statement is planned with
-- its values, so the plan reads metadata only for --where.
    l.created_at >= $1 AND l.created_at < $2
AND ($3::text[] IS NULL
     OR l.service_id IN (SELECT service_id FROM services WHERE service_name = ANY ($3)))
AND ($4::text IS NULL OR l.route LIKE $4)
AND ((cardinality($5::smallint[]) = 0 AND cardinality($6::smallint[]) = 0)
     OR l.status = ANY ($5) OR l.status / 100 = ANY ($6))
AND (cardinality($7::text[]) = 0 OR l.level = ANY ($7))
AND (cardinality($8::text[]) = 0 OR l.method = ANY ($8))
AND (cardinality($9::text[]) = 0
     OR NOT EXISTS (SELECT 1 FROM unnest($9::text[], $10::text[]) AS m(p, v)
                    WHERE (l.metadata #>> m.p::text[]) IS DISTINCT FROM m.v))
