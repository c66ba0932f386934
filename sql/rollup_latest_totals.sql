-- The latest stored hour and day of each of some services' totals, from a time on:
-- every grain of a width holds a cell only where that width's totals do, so a cell
-- after them is stored nowhere yet. Parameters: the first hour, the first day (the
-- start of the day of that hour), the services. Columns: whether the row is a day's,
-- the service, the latest start.
SELECT false AS is_day, service_id, max(hour) AS latest
FROM logctl_rollup_total_hour
WHERE hour >= $1 AND service_id = ANY($3)
GROUP BY service_id
UNION ALL
SELECT true, service_id, max(day)
FROM logctl_rollup_total_day
WHERE day >= $2 AND service_id = ANY($3)
GROUP BY service_id
