//! The analytics reports (summary, timeline, top, latency, check) against plain SQL over
//! the raw rows of the same database, on generated logs with known shapes: a route that
//! becomes slow at 03:00, a service whose errors start at 04:00, and twenty minutes
//! without events. Counts exactly, quantiles within 1%; and their output at several
//! widths, piped and with NO_COLOR, and as JSON.

mod common;

use std::io::Write;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

const FROM: &str = "2026-11-20T00:00:00Z";
const UNTIL: &str = "2026-11-20T06:00:00Z";
const ERROR: &str = "(status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic'))";

/// (service, endpoint template with `{}` for an id, method)
const ROUTES: [(&str, &str, &str); 6] = [
    ("api", "/api/v1/users/{}", "GET"),
    ("api", "/api/v1/orders/{}", "GET"),
    ("checkout", "/api/v1/cart", "POST"),
    ("checkout", "/api/v1/pay", "POST"),
    ("search", "/api/v1/search", "GET"),
    ("search", "/health", "GET"),
];

/// A small deterministic generator (xorshift), so the shapes are the same every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes the logs: an event every 0.75 s from 00:00 to 06:00, none from 01:00 to
/// 01:20; /api/v1/search slow (about 1.5 s) from 03:00; checkout failing (a third of
/// its requests 500) from 04:00; a few 404s and warnings everywhere.
fn write_logs(path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let start = chrono::DateTime::parse_from_rfc3339(FROM).unwrap().to_utc();
    for tick in 0..(6 * 3600 * 4 / 3) {
        let at = start + chrono::TimeDelta::milliseconds(tick * 750 + random.below(700) as i64);
        let minute = (at - start).num_minutes();
        if (60..80).contains(&minute) {
            continue;
        }
        let (service, template, method) = ROUTES[random.below(ROUTES.len() as u64) as usize];
        let endpoint = template.replace("{}", &random.below(100_000).to_string());
        // Log-uniform between 3 and 400 ms.
        let mut latency = (3.0 * (400.0_f64 / 3.0).powf(random.unit())) as i64;
        if template == "/api/v1/search" && minute >= 180 {
            latency = 1200 + random.below(600) as i64;
        }
        let mut status = 200;
        let mut level = "info";
        if service == "checkout" && minute >= 240 && random.below(3) == 0 {
            (status, level) = (500, "error");
        } else if random.below(50) == 0 {
            status = 404;
        } else if random.below(40) == 0 {
            level = "warn";
        }
        let region = ["eu-west-1", "us-east-1"][random.below(2) as usize];
        writeln!(
            out,
            r#"{{"timestamp":"{}","service":"{service}","level":"{level}","message":"{method} {endpoint} {status}","endpoint":"{endpoint}","method":"{method}","status":{status},"latency_ms":{latency},"metadata":{{"region":"{region}"}}}}"#,
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        )
        .unwrap();
    }
}

/// One database with the logs loaded, shared by the tests (they only read it).
fn db() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| {
        let db = TestDb::with_schema("reports");
        let path = scratch_dir("reports").join("shapes.ndjson");
        write_logs(&path);
        assert_success(
            &db.logctl(&["load", path.to_str().unwrap()])
                .output()
                .unwrap(),
        );
        db
    })
}

fn window() -> Vec<&'static str> {
    vec!["--since", FROM, "--until", UNTIL]
}

/// Runs a report with the window and `--format json`.
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(window());
    all.extend(["--format", "json"]);
    db().logctl_json(&all)
}

fn scalar_i64(sql: &str) -> i64 {
    db().query(sql)[0].get(0)
}

/// percentile_disc over the raw rows where `condition` holds in [from, until).
fn exact_quantile(q: f64, condition: &str, from: &str, until: &str) -> f64 {
    let value: Option<i32> = db().query(&format!(
        "SELECT percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) \
         FROM log_events l JOIN services s USING (service_id) \
         WHERE created_at >= '{from}' AND created_at < '{until}' AND {condition}"
    ))[0]
        .get(0);
    f64::from(value.expect("a quantile"))
}

fn assert_within_1_percent(estimate: &Value, exact: f64, what: &str) {
    let estimate = estimate
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {estimate}"));
    let error = (estimate - exact).abs() / exact.max(1.0);
    assert!(
        error <= 0.01,
        "{what}: {estimate} against {exact} ({:.3}%)",
        error * 100.0
    );
}

fn counts(condition: &str, from: &str, until: &str) -> (i64, i64) {
    let row = &db().query(&format!(
        "SELECT count(*), count(*) FILTER (WHERE {ERROR}) \
         FROM log_events l JOIN services s USING (service_id) \
         WHERE created_at >= '{from}' AND created_at < '{until}' AND {condition}"
    ))[0];
    (row.get(0), row.get(1))
}

fn measure<'v>(table: &'v Value, name: &str) -> &'v Value {
    &table
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["measure"] == name)
        .unwrap_or_else(|| panic!("no {name} in {table}"))["value"]
}

#[test]
fn summary_equals_sql_over_the_raw_rows() {
    let summary = json(&["summary"]);
    let overall = &summary["overall"];
    let (events, errors) = counts("true", FROM, UNTIL);
    assert_eq!(measure(overall, "count"), events);
    assert_eq!(measure(overall, "errors"), errors);
    assert_within_1_percent(
        measure(overall, "error-rate (%)"),
        100.0 * errors as f64 / events as f64,
        "error rate",
    );
    for (name, q) in [("p50 (ms)", 0.5), ("p95 (ms)", 0.95), ("p99 (ms)", 0.99)] {
        assert_within_1_percent(
            measure(overall, name),
            exact_quantile(q, "true", FROM, UNTIL),
            name,
        );
    }
    let services = summary["services"].as_array().unwrap();
    assert_eq!(services.len(), 3);
    for row in services {
        let service = row["service"].as_str().unwrap();
        let condition = format!("s.service_name = '{service}'");
        let (events, errors) = counts(&condition, FROM, UNTIL);
        assert_eq!(row["requests"], events, "{service}");
        assert_eq!(row["errors"], errors, "{service}");
        assert_within_1_percent(
            &row["p99_ms"],
            exact_quantile(0.99, &condition, FROM, UNTIL),
            service,
        );
    }
    // The route that became slow leads by p99; the failing service's routes by errors.
    assert_eq!(summary["slowest_routes"][0]["route"], "/api/v1/search");
    assert_eq!(summary["failing_routes"][0]["service"], "checkout");
    let failing = &summary["failing_routes"][0];
    let route = failing["route"].as_str().unwrap();
    let (_, errors) = counts(
        &format!("s.service_name = 'checkout' AND l.route = '{route}'"),
        FROM,
        UNTIL,
    );
    assert_eq!(failing["errors"], errors);
    // The small timeline: 24 buckets of 15 minutes, the empty ones counted as 0.
    let timeline = summary["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 24);
    let per_bucket: Vec<i64> = db()
        .query(&format!(
            "SELECT count(l.created_at) FROM generate_series('{FROM}'::timestamptz, '{UNTIL}'::timestamptz - interval '15 minutes', interval '15 minutes') AS b(s) \
             LEFT JOIN log_events l ON l.created_at >= b.s AND l.created_at < b.s + interval '15 minutes' \
             GROUP BY b.s ORDER BY b.s"
        ))
        .iter()
        .map(|row| row.get(0))
        .collect();
    let reported: Vec<i64> = timeline
        .iter()
        .map(|b| b["requests"].as_i64().unwrap())
        .collect();
    assert_eq!(reported, per_bucket);
    assert_eq!(reported[4], 0, "01:00 to 01:15 holds no event and is shown");
}

#[test]
fn summary_compares_with_the_window_before() {
    let summary = db().logctl_json(&[
        "summary",
        "--since",
        "2026-11-20T03:00:00Z",
        "--until",
        UNTIL,
        "--compare",
        "prev",
        "--format",
        "json",
    ]);
    let count = summary["overall"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["measure"] == "count")
        .unwrap()
        .clone();
    let (now, _) = counts("true", "2026-11-20T03:00:00Z", UNTIL);
    let (before, _) = counts("true", FROM, "2026-11-20T03:00:00Z");
    assert_eq!(count["value"], now);
    assert_eq!(count["before"], before);
    let change = (now - before) as f64 / before as f64;
    assert!(
        (count["change"].as_f64().unwrap() - change).abs() < 0.0006,
        "{count}"
    );
}

#[test]
fn timelines_are_zero_filled_and_equal_sql() {
    let timeline = json(&["timeline", "--bucket", "5m", "--by", "status-class"]);
    let rows = timeline["timeline"].as_array().unwrap();
    let expected: Vec<(String, String, i64)> = db()
        .query(&format!(
            "SELECT to_char(b.s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), c.class, count(l.created_at) \
             FROM generate_series('{FROM}'::timestamptz, '{UNTIL}'::timestamptz - interval '5 minutes', interval '5 minutes') AS b(s) \
             CROSS JOIN (VALUES ('2xx'), ('4xx'), ('5xx')) AS c(class) \
             LEFT JOIN log_events l ON l.created_at >= b.s AND l.created_at < b.s + interval '5 minutes' \
               AND (l.status / 100)::text || 'xx' = c.class \
             GROUP BY 1, 2 ORDER BY 1, 2"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let mut reported: Vec<(String, String, i64)> = rows
        .iter()
        .map(|row| {
            (
                row["bucket_start"].as_str().unwrap().to_string(),
                row["status_class"].as_str().unwrap().to_string(),
                row["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    reported.sort();
    assert_eq!(reported, expected);
    assert!(
        reported
            .iter()
            .any(|(start, _, n)| start == "2026-11-20T01:05:00Z" && *n == 0),
        "an empty bucket is there, as 0"
    );
    // p99 per hour of the route that becomes slow at 03:00.
    let slow = json(&[
        "timeline",
        "--bucket",
        "1h",
        "--metric",
        "p99",
        "--route",
        "/api/v1/search",
    ]);
    let hours = slow["timeline"].as_array().unwrap();
    assert_eq!(hours.len(), 6);
    for (hour, row) in hours.iter().enumerate() {
        let (from, until) = (
            format!("2026-11-20T{hour:02}:00:00Z"),
            format!("2026-11-20T{:02}:00:00Z", hour + 1),
        );
        let exact = exact_quantile(0.99, "l.route = '/api/v1/search'", &from, &until);
        assert_within_1_percent(&row["p99_ms"], exact, &from);
    }
    assert!(hours[2]["p99_ms"].as_f64().unwrap() < 1000.0);
    assert!(hours[3]["p99_ms"].as_f64().unwrap() > 1200.0);
}

#[test]
fn top_ranks_equal_sql() {
    let top = json(&[
        "top",
        "routes",
        "--by",
        "p99",
        "--min-count",
        "20",
        "--limit",
        "3",
    ]);
    // The slow route and the one below it are clear; further down the routes share a
    // distribution, so the ranks are compared by value (within 1%), not by name.
    let expected: Vec<(String, String, f64)> = db()
        .query(&format!(
            "SELECT s.service_name, l.route, \
                    percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms)::float8 \
             FROM log_events l JOIN services s USING (service_id) \
             WHERE created_at >= '{FROM}' AND created_at < '{UNTIL}' GROUP BY 1, 2 \
             HAVING count(*) >= 20 ORDER BY 3 DESC LIMIT 3"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let rows = top["top"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (rank, (row, (service, route, p99))) in rows.iter().zip(&expected).enumerate() {
        if rank < 2 {
            assert_eq!(
                (&row["service"], &row["route"]),
                (&(*service).clone().into(), &(*route).clone().into())
            );
        }
        assert_within_1_percent(&row["p99_ms"], *p99, &format!("rank {}", rank + 1));
    }
    for row in rows {
        let condition = format!(
            "s.service_name = '{}' AND l.route = '{}'",
            row["service"].as_str().unwrap(),
            row["route"].as_str().unwrap()
        );
        let (events, errors) = counts(&condition, FROM, UNTIL);
        assert_eq!(
            (row["requests"].clone(), row["errors"].clone()),
            (events.into(), errors.into())
        );
        assert_within_1_percent(
            &row["p99_ms"],
            exact_quantile(0.99, &condition, FROM, UNTIL),
            &condition,
        );
    }
    // Services by errors, statuses and methods by count: exact.
    let services = json(&["top", "services", "--by", "errors"]);
    assert_eq!(services["top"][0]["service"], "checkout");
    for (subject, column, sql) in [
        ("services", "service", "s.service_name"),
        ("status", "status", "l.status::text"),
        ("methods", "method", "l.method"),
    ] {
        let top = json(&["top", subject, "--by", "count", "--limit", "0"]);
        let mut reported: Vec<(String, i64)> = top["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row[column].as_str().unwrap().to_string(),
                    row["requests"].as_i64().unwrap(),
                )
            })
            .collect();
        reported.sort();
        let expected: Vec<(String, i64)> = db()
            .query(&format!(
                "SELECT {sql}, count(*) FROM log_events l JOIN services s USING (service_id) \
                 WHERE created_at >= '{FROM}' AND created_at < '{UNTIL}' GROUP BY 1 ORDER BY 1"
            ))
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(reported, expected, "{subject}");
    }
}

#[test]
fn latency_quantiles_and_histogram_equal_sql() {
    let condition = "s.service_name = 'search'";
    for exact in [false, true] {
        let mut args = vec!["latency", "--service", "search"];
        if exact {
            args.push("--exact");
        }
        let latency = json(&args);
        let figures = &latency["latency"];
        for (name, q) in [
            ("p50 (ms)", 0.5),
            ("p90 (ms)", 0.9),
            ("p95 (ms)", 0.95),
            ("p99 (ms)", 0.99),
            ("p99.9 (ms)", 0.999),
        ] {
            let expected = exact_quantile(q, condition, FROM, UNTIL);
            if exact {
                assert_eq!(
                    measure(figures, name).as_f64().unwrap(),
                    expected,
                    "exact {name}"
                );
            } else {
                assert_within_1_percent(measure(figures, name), expected, name);
            }
        }
        let max = scalar_i64(&format!(
            "SELECT max(latency_ms)::bigint FROM log_events l JOIN services s USING (service_id) WHERE {condition}"
        ));
        assert_eq!(measure(figures, "max (ms)").as_f64().unwrap(), max as f64);
        let bins = latency["histogram"].as_array().unwrap();
        let (events, _) = counts(condition, FROM, UNTIL);
        assert_eq!(
            bins.iter()
                .map(|b| b["count"].as_i64().unwrap())
                .sum::<i64>(),
            events
        );
        // Bins up to 50 ms are exact.
        for bin in bins
            .iter()
            .filter(|b| b["at_most_ms"].as_i64().unwrap() <= 50)
        {
            let above = bin["above_ms"].as_i64().unwrap_or(-1);
            let at_most = bin["at_most_ms"].as_i64().unwrap();
            let expected = scalar_i64(&format!(
                "SELECT count(*) FROM log_events l JOIN services s USING (service_id) \
                 WHERE {condition} AND latency_ms > {above} AND latency_ms <= {at_most}"
            ));
            assert_eq!(bin["count"], expected, "bin to {at_most}");
        }
    }
}

#[test]
fn check_exits_7_when_a_condition_is_breached() {
    let run = |since: &str, until: &str, conditions: &[&str]| {
        let mut args = vec![
            "check",
            "--service",
            "checkout",
            "--since",
            since,
            "--until",
            until,
        ];
        for condition in conditions {
            args.extend(["--fail-if", condition]);
        }
        db().logctl(&args).output().unwrap()
    };
    // Before 04:00 checkout is healthy; after, a third of its requests fail.
    let healthy = run(
        "2026-11-20T02:00:00Z",
        "2026-11-20T04:00:00Z",
        &["error-rate > 2%"],
    );
    assert_exit(&healthy, 0);
    assert!(stdout(&healthy).contains("ok"), "{}", stdout(&healthy));
    let failing = run(
        "2026-11-20T04:00:00Z",
        UNTIL,
        &["error-rate > 2%", "p99 > 100000"],
    );
    assert_exit(&failing, 7);
    let text = stdout(&failing);
    assert!(text.contains("BREACHED") && text.contains("ok"), "{text}");
    let (events, errors) = counts("s.service_name = 'checkout'", "2026-11-20T04:00:00Z", UNTIL);
    let rate = format!("{:.2}", 100.0 * errors as f64 / events as f64);
    assert!(text.contains(&rate), "the measured rate {rate} in {text}");
    // A condition that cannot be read is a usage error that says how to write one.
    let bad = run("2026-11-20T04:00:00Z", UNTIL, &["p99 >> fast"]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("METRIC OP VALUE"), "{}", stderr(&bad));
    let help = db().logctl(&["check", "--help"]).output().unwrap();
    assert!(stdout(&help).contains("7    check: a --fail-if condition was breached"));
}

#[test]
fn an_empty_window_says_why() {
    for report in ["summary", "timeline", "top", "latency"] {
        let mut args = vec![report];
        if report == "top" {
            args.push("routes");
        }
        args.extend(["--since", "2026-01-01", "--until", "2026-01-02"]);
        let output = db().logctl(&args).output().unwrap();
        assert_success(&output);
        assert_eq!(stdout(&output), "", "{report}");
        let why = stderr(&output);
        assert!(
            why.contains("newest event") && why.contains("api, checkout, search"),
            "{report}: {why}"
        );
    }
}

/// Every token of the JSON's numbers must appear whole in the text.
fn numbers_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Number(number) => out.push(number.to_string()),
        Value::Array(items) => items.iter().for_each(|item| numbers_in(item, out)),
        Value::Object(map) => map.values().for_each(|item| numbers_in(item, out)),
        _ => {}
    }
}

#[test]
fn output_fits_every_width_without_splitting_a_number() {
    let top_json = json(&["top", "routes", "--by", "p99"]);
    let mut numbers = Vec::new();
    numbers_in(&top_json["top"][0], &mut numbers);
    numbers.retain(|n| n.len() > 2 && !n.starts_with('-'));
    for width in ["60", "80", "200"] {
        for report in [
            vec!["top", "routes", "--by", "p99"],
            vec!["summary"],
            vec!["timeline", "--by", "service"],
            vec!["latency"],
            vec!["check", "--fail-if", "p99 > 10"],
        ] {
            let mut args = report.clone();
            args.extend(window());
            args.extend(["--width", width]);
            let output = db().logctl(&args).output().unwrap();
            let text = stdout(&output);
            assert!(!text.contains('\u{1b}'), "no escapes when piped: {text}");
            let limit: usize = width.parse().unwrap();
            for line in text.lines() {
                assert!(
                    line.chars().count() <= limit,
                    "{report:?} at {width}: {line:?} is {} wide",
                    line.chars().count()
                );
            }
            if report[0] == "top" {
                let words: Vec<&str> = text.split_whitespace().collect();
                for number in &numbers {
                    let shown = number.trim_end_matches(".0");
                    assert!(
                        words
                            .iter()
                            .any(|w| w.trim_matches('|') == shown || w.trim_matches('|') == number),
                        "{number} whole at {width}: {text}"
                    );
                }
            }
        }
    }
    // Colour only when asked for on a pipe, and never with NO_COLOR.
    let mut args = vec!["summary", "--color", "always"];
    args.extend(window());
    let coloured = stdout(&db().logctl(&args).output().unwrap());
    assert!(coloured.contains('\u{1b}'), "--color always colours");
    let mut args = vec!["summary"];
    args.extend(window());
    let plain = stdout(&db().logctl(&args).env("NO_COLOR", "1").output().unwrap());
    assert!(!plain.contains('\u{1b}'));
}

#[test]
fn json_numbers_are_numbers_rounded_sensibly() {
    for report in [
        vec!["summary"],
        vec!["timeline", "--metric", "p95"],
        vec!["top", "routes", "--by", "error-rate"],
        vec!["latency"],
    ] {
        let value = json(&report);
        let mut numbers = Vec::new();
        numbers_in(&value, &mut numbers);
        assert!(!numbers.is_empty());
        for number in numbers {
            let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 3, "{report:?}: {number}");
        }
    }
}

#[test]
fn a_metadata_filter_reads_raw_rows_exactly() {
    let latency = json(&["latency", "--where", "metadata.region=eu-west-1"]);
    let condition = "l.metadata->>'region' = 'eu-west-1'";
    let (events, _) = counts(condition, FROM, UNTIL);
    assert_eq!(measure(&latency["latency"], "count"), events);
    assert_eq!(
        measure(&latency["latency"], "p99 (ms)").as_f64().unwrap(),
        exact_quantile(0.99, condition, FROM, UNTIL)
    );
}

/// The window the comparison tests look at, and the one before it (`--compare prev`):
/// the search route is slow and checkout fails only in the first.
const LATER: &str = "2026-11-20T03:00:00Z";

/// A report's arguments over [LATER, UNTIL) compared with [FROM, LATER), as JSON.
fn compared_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend([
        "--since",
        LATER,
        "--until",
        UNTIL,
        "--compare",
        "prev",
        "--format",
        "json",
    ]);
    all
}

/// Runs a report over [LATER, UNTIL) compared with [FROM, LATER), as JSON.
fn compared_json(args: &[&str]) -> Value {
    db().logctl_json(&compared_args(args))
}

/// Checks a row's `{column}_before` against `expected` (exactly for a count, within 1%
/// for a quantile; null for None) and its `{column}_change` against the change from it
/// to the row's `column` (null without a value before).
fn assert_compared(row: &Value, column: &str, expected: Option<f64>, exact: bool) {
    let before = &row[format!("{column}_before")];
    let what = format!("{column}_before in {row}");
    match expected {
        None => assert!(before.is_null(), "{what}: none expected"),
        Some(expected) if exact => assert_eq!(before.as_f64(), Some(expected), "{what}"),
        Some(expected) => assert_within_1_percent(before, expected, &what),
    }
    let now = row[column].as_f64();
    let change = &row[format!("{column}_change")];
    match (now, before.as_f64()) {
        (Some(now), Some(before)) if before != 0.0 => {
            let expected = (now - before) / before;
            let shown = change
                .as_f64()
                .unwrap_or_else(|| panic!("{column}_change in {row}"));
            // From the unrounded figures: within the rounding of the shown ones (0.05).
            let rounding = 0.05 * (1.0 + now.abs() / before) / before;
            assert!(
                (shown - expected).abs() < 0.0006 + rounding,
                "{column}_change in {row}"
            );
        }
        _ => assert!(
            change.is_null(),
            "{column}_change without a value before: {row}"
        ),
    }
}

/// Checks every headline figure of a row (requests, errors, error rate, p50/p95/p99)
/// against plain SQL over the events of [FROM, LATER) where `condition` holds.
fn assert_figures_compared(row: &Value, condition: &str) {
    let (events, errors) = counts(condition, FROM, LATER);
    assert_compared(row, "requests", Some(events as f64), true);
    assert_compared(row, "errors", Some(errors as f64), true);
    let rate = (events > 0).then(|| 100.0 * errors as f64 / events as f64);
    let rate_row = row["error_rate_pct_before"].as_f64();
    match rate {
        Some(rate) => assert!((rate_row.unwrap() - rate).abs() <= 0.005, "{row}"),
        None => assert!(rate_row.is_none(), "{row}"),
    }
    assert_compared(
        row,
        "error_rate_pct",
        rate.map(|r| (r * 100.0).round() / 100.0),
        true,
    );
    for (column, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        let exact = (events > 0).then(|| exact_quantile(q, condition, FROM, LATER));
        assert_compared(row, column, exact, false);
    }
}

fn route_condition(row: &Value) -> String {
    format!(
        "s.service_name = '{}' AND l.route = '{}'",
        row["service"].as_str().unwrap(),
        row["route"].as_str().unwrap()
    )
}

#[test]
fn summary_compares_every_figure_with_the_window_before() {
    let summary = compared_json(&["summary"]);
    let services = summary["services"].as_array().unwrap();
    assert_eq!(services.len(), 3);
    for row in services {
        let service = row["service"].as_str().unwrap();
        assert_figures_compared(row, &format!("s.service_name = '{service}'"));
    }
    // Both route rankings: the search route is slow only now, checkout fails only now.
    for (ranking, leader) in [("slowest_routes", "search"), ("failing_routes", "checkout")] {
        let rows = summary[ranking].as_array().unwrap();
        assert!(!rows.is_empty(), "{ranking}");
        assert_eq!(rows[0]["service"], leader, "{ranking}");
        for row in rows {
            assert_figures_compared(row, &route_condition(row));
        }
    }
    assert!(
        summary["failing_routes"][0]["errors_before"]
            .as_i64()
            .unwrap()
            < summary["failing_routes"][0]["errors"].as_i64().unwrap() / 10
    );
    // The small timeline: each bucket beside the same bucket of the window before.
    let timeline = summary["timeline"].as_array().unwrap();
    let start = |row: &Value| {
        row["bucket_start"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let width = start(&timeline[1]) - start(&timeline[0]);
    let shift = start(&timeline[0]) - FROM.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    for row in timeline {
        let from = start(row) - shift;
        let (events, _) = counts("true", &from.to_rfc3339(), &(from + width).to_rfc3339());
        assert_compared(row, "requests", Some(events as f64), true);
    }
    assert!(
        timeline.iter().any(|row| row["requests_before"] == 0),
        "the empty 01:00 to 01:20 is a bucket before, as 0"
    );
}

#[test]
fn top_timeline_latency_and_check_compare_every_figure() {
    // A ranking by a metric beyond the headline figures compares that one too.
    let top = compared_json(&["top", "routes", "--by", "p90", "--limit", "4"]);
    for row in top["top"].as_array().unwrap() {
        let condition = route_condition(row);
        assert_figures_compared(row, &condition);
        let p90 = exact_quantile(0.9, &condition, FROM, LATER);
        assert_compared(row, "p90_ms", Some(p90), false);
    }
    // Each status code per hour, beside the same hour of the window before.
    let timeline = compared_json(&["timeline", "--bucket", "1h", "--by", "status"]);
    let rows = timeline["timeline"].as_array().unwrap();
    assert_eq!(rows.len(), 3 * 3, "three hours of 200, 404 and 500");
    for row in rows {
        let hour: u32 = row["bucket_start"].as_str().unwrap()[11..13]
            .parse()
            .unwrap();
        let (from, until) = (
            format!("2026-11-20T{:02}:00:00Z", hour - 3),
            format!("2026-11-20T{:02}:00:00Z", hour - 2),
        );
        let status = row["status"].as_str().unwrap();
        let (events, _) = counts(&format!("l.status = {status}"), &from, &until);
        assert_compared(row, "requests", Some(events as f64), true);
    }
    // Every quantile, the maximum and every bin of the histogram.
    let latency = compared_json(&["latency", "--exact"]);
    for (name, q) in [
        ("p50 (ms)", 0.5),
        ("p90 (ms)", 0.9),
        ("p95 (ms)", 0.95),
        ("p99 (ms)", 0.99),
        ("p99.9 (ms)", 0.999),
    ] {
        let row = latency["latency"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["measure"] == name)
            .unwrap();
        assert_eq!(
            row["before"].as_f64(),
            Some(exact_quantile(q, "true", FROM, LATER)),
            "{name} exactly, with --exact"
        );
    }
    let bins = latency["histogram"].as_array().unwrap();
    for bin in bins {
        let above = bin["above_ms"].as_i64().unwrap_or(-1);
        let at_most = bin["at_most_ms"].as_i64().unwrap();
        let (events, _) = counts(
            &format!("latency_ms > {above} AND latency_ms <= {at_most}"),
            FROM,
            LATER,
        );
        assert_compared(bin, "count", Some(events as f64), true);
    }
    // Check: each measured value beside the one before, which breaches nothing.
    let output = db()
        .logctl(&compared_args(&[
            "check",
            "--service",
            "checkout",
            "--fail-if",
            "error-rate > 2%",
            "--fail-if",
            "p99 > 100000",
        ]))
        .output()
        .unwrap();
    assert_exit(&output, 7);
    let check: Value = serde_json::from_slice(&output.stdout).unwrap();
    let condition = "s.service_name = 'checkout'";
    let (events, errors) = counts(condition, FROM, LATER);
    let rows = check["check"].as_array().unwrap();
    let rate = (100.0 * errors as f64 / events as f64 * 100.0).round() / 100.0;
    assert_compared(&rows[0], "measured", Some(rate), true);
    let p99 = exact_quantile(0.99, condition, FROM, LATER);
    assert_compared(&rows[1], "measured", Some(p99), false);
}

#[test]
fn timeline_by_status_splits_by_code_and_by_status_class_by_class() {
    let expected = |group: &str| -> Vec<(String, String, i64)> {
        db().query(&format!(
            "SELECT to_char(date_trunc('hour', created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), {group}, count(*) \
             FROM log_events WHERE created_at >= '{FROM}' AND created_at < '{UNTIL}' GROUP BY 1, 2 ORDER BY 1, 2"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
    };
    for (by, column, group) in [
        ("status", "status", "status::text"),
        (
            "status-class",
            "status_class",
            "(status / 100)::text || 'xx'",
        ),
    ] {
        let timeline = json(&["timeline", "--bucket", "1h", "--by", by]);
        let mut reported: Vec<(String, String, i64)> = timeline["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["requests"] != 0)
            .map(|row| {
                (
                    row["bucket_start"].as_str().unwrap().to_string(),
                    row[column].as_str().unwrap().to_string(),
                    row["requests"].as_i64().unwrap(),
                )
            })
            .collect();
        reported.sort();
        assert_eq!(reported, expected(group), "--by {by}");
    }
}
