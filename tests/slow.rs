//! `logctl slow`: its rows and per-service summary equal plain SQL over the same
//! data, with each filter, in each output format.

mod common;

use std::sync::OnceLock;

use common::*;

/// One loaded database shared by the report tests (they only read).
fn loaded() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| {
        let db = TestDb::with_schema("slow");
        let dir = scratch_dir("slow");
        let file = generated_file(&dir, "app.ndjson", 8000, 21);
        assert_success(
            &db.logctl(&["load", file.to_str().unwrap()])
                .output()
                .unwrap(),
        );
        db
    })
}

fn report(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["slow", "--format", "json"];
    all.extend_from_slice(args);
    let output = loaded().logctl(&all).output().unwrap();
    assert_success(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sql_rows(filter: &str, limit: i64) -> Vec<(String, i64, String)> {
    loaded()
        .query(&format!(
            "SELECT s.service_name, l.latency_ms::bigint, to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') \
             FROM log_events l JOIN services s USING (service_id) WHERE l.latency_ms > 2000 {filter} \
             ORDER BY l.latency_ms DESC, l.created_at DESC, l.event_id LIMIT {limit}"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn report_rows(json: &serde_json::Value) -> Vec<(String, i64, String)> {
    json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let time = chrono::DateTime::parse_from_rfc3339(r["time"].as_str().unwrap()).unwrap();
            (
                r["service"].as_str().unwrap().to_string(),
                r["latency_ms"].as_i64().unwrap(),
                time.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            )
        })
        .collect()
}

#[test]
fn rows_equal_the_plain_sql_query() {
    let json = report(&["--threshold", "2000"]);
    let rows = report_rows(&json);
    assert_eq!(rows.len(), 20, "default limit");
    assert_eq!(rows, sql_rows("", 20));
    assert!(
        rows.windows(2).all(|w| w[0].1 >= w[1].1),
        "sorted by latency"
    );
}

#[test]
fn limit_service_and_since_filter_like_sql() {
    let json = report(&[
        "--threshold",
        "2000",
        "--limit",
        "7",
        "--service",
        "payments",
    ]);
    assert_eq!(
        report_rows(&json),
        sql_rows("AND s.service_name = 'payments'", 7)
    );
    assert!(!report_rows(&json).is_empty());
    let json = report(&[
        "--threshold",
        "2000",
        "--since",
        "2026-11-24T00:30:00Z",
        "--limit",
        "50",
    ]);
    assert_eq!(
        report_rows(&json),
        sql_rows("AND l.created_at >= '2026-11-24T00:30:00Z'", 50)
    );
    let json = report(&["--threshold", "2000", "--since", "1h"]);
    assert!(
        report_rows(&json).is_empty(),
        "the generated logs are from 2026-11-24 00:00"
    );
}

#[test]
fn until_dates_and_no_limit_filter_like_sql() {
    let json = report(&[
        "--threshold",
        "2000",
        "--since",
        "2026-11-24",
        "--until",
        "2026-11-24T00:30:00Z",
        "--limit",
        "0",
    ]);
    let expected = sql_rows(
        "AND l.created_at >= '2026-11-24T00:00:00Z' AND l.created_at < '2026-11-24T00:30:00Z'",
        100_000,
    );
    assert!(expected.len() > 20, "more than the default limit");
    assert_eq!(report_rows(&json), expected);
    let summed: i64 = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slow_requests"].as_i64().unwrap())
        .sum();
    assert_eq!(
        summed,
        expected.len() as i64,
        "the summary has the same window"
    );
    let json = report(&[
        "--threshold",
        "2000",
        "--since",
        "2026-11-24",
        "--timezone",
        "+00:20",
        "--limit",
        "0",
    ]);
    assert_eq!(
        report_rows(&json),
        sql_rows("AND l.created_at >= '2026-11-23T23:40:00Z'", 100_000),
        "a date is midnight in --timezone"
    );
}

#[test]
fn a_window_that_ends_before_it_starts_names_both_flags() {
    let output = loaded()
        .logctl(&["slow", "--since", "today", "--until", "yesterday"])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.contains("--since") && err.contains("--until"), "{err}");
}

#[test]
fn the_per_service_summary_equals_sql_percentiles() {
    let json = report(&["--threshold", "2000"]);
    let expected: Vec<(String, i64, f64, f64, f64, i64)> = loaded()
        .query(
            "SELECT s.service_name, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), \
             percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), \
             max(latency_ms)::bigint FROM log_events JOIN services s USING (service_id) WHERE latency_ms > 2000 \
             GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let actual: Vec<(String, i64, f64, f64, f64, i64)> = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["slow_requests"].as_i64().unwrap(),
                s["slow_p50_ms"].as_f64().unwrap(),
                s["slow_p95_ms"].as_f64().unwrap(),
                s["slow_p99_ms"].as_f64().unwrap(),
                s["slow_max_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    // Percentiles are given to a tenth of a millisecond in every format.
    let round = |rows: Vec<(String, i64, f64, f64, f64, i64)>| {
        rows.into_iter()
            .map(|(s, c, a, b, d, m)| {
                (
                    s,
                    c,
                    (a * 10.0).round() as i64,
                    (b * 10.0).round() as i64,
                    (d * 10.0).round() as i64,
                    m,
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(actual.len() > 5);
    assert_eq!(round(actual.clone()), round(expected));
    for (_, _, p50, p95, p99, _) in actual {
        for value in [p50, p95, p99] {
            assert_eq!(value, (value * 10.0).round() / 10.0, "{value} is rounded");
        }
    }
}

#[test]
fn table_and_csv_formats_carry_the_same_rows() {
    let output = loaded()
        .logctl(&["slow", "--threshold", "2000", "--limit", "3"])
        .output()
        .unwrap();
    assert_success(&output);
    let table = stdout(&output);
    let top = sql_rows("", 3);
    for (service, latency, _) in &top {
        assert!(
            table.contains(service) && table.contains(&latency.to_string()),
            "{table}"
        );
    }
    assert!(table.contains("p95_ms"));
    let output = loaded()
        .logctl(&[
            "slow",
            "--threshold",
            "2000",
            "--limit",
            "3",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let csv = stdout(&output);
    let mut blocks = csv.split("\n\n");
    let requests: Vec<&str> = blocks.next().unwrap().lines().collect();
    assert_eq!(
        requests[0],
        "service,time,latency_ms,endpoint,method,status"
    );
    assert_eq!(requests.len(), 4);
    for (line, (service, latency, _)) in requests[1..].iter().zip(&top) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(
            (fields[0], fields[2]),
            (service.as_str(), latency.to_string().as_str())
        );
    }
    assert!(
        blocks
            .next()
            .unwrap()
            .starts_with("service,requests,all_p50_ms")
    );
}

#[test]
fn the_report_reads_the_latency_index_not_json() {
    // The query as the report runs it: the shared filter in place, every parameter bound
    // (a window over all the data, no other filter, a threshold of 2000, 20 rows).
    let sql = include_str!("../sql/slow_requests.sql")
        .replace("{{filter}}", include_str!("../sql/report_filter.sql"));
    let from: chrono::DateTime<chrono::Utc> = "2000-01-01T00:00:00Z".parse().unwrap();
    let until: chrono::DateTime<chrono::Utc> = "2100-01-01T00:00:00Z".parse().unwrap();
    let (none, small, text): (Option<Vec<String>>, Vec<i16>, Vec<String>) =
        (None, Vec::new(), Vec::new());
    let route: Option<String> = None;
    let plan: Vec<String> = loaded()
        .client()
        .query(
            &format!("EXPLAIN {sql}"),
            &[
                &from, &until, &none, &route, &small, &small, &text, &text, &text, &text, &2000i32,
                &20i64,
            ],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("log_events_latency_ms_idx"), "{plan}");
    assert!(!plan.contains("metadata"), "{plan}");
}
