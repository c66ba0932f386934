//! `logctl errors`, `logctl trace` and `slow`'s per-service columns (and both compared
//! with the hour before) against plain SQL over the raw rows of logs with known shapes:
//! two hours of traffic from three services, where `payments` starts failing at 11:30:00
//! with a message the hour before never had, and one request crosses all three services.

mod common;

use std::fmt::Write as _;
use std::sync::OnceLock;

use common::*;

const WINDOW: [&str; 4] = [
    "--since",
    "2026-11-24T11:00:00Z",
    "--until",
    "2026-11-24T12:00:00Z",
];
/// A request that crosses api, payments and search (a random, version 4 id).
const TRACED: &str = "5c2a9d3e-8f41-4b6a-9c0d-1e2f3a4b5c6d";
/// A version 7 id made at 2026-11-24 11:45:00 UTC, logged by two services (and
/// `req-42`, which is not a UUID, by two more lines).
const TRACED_V7: &str = "01a20d5f-9e60-7abc-8def-0123456789ab";

/// The error messages, by the kind each line records in its metadata, with the
/// signature `errors` must count them under: a message longer than the error lines'
/// index holds is cut at 200 characters, and a line without one has its own.
fn kinds() -> Vec<(&'static str, String)> {
    vec![
        ("missing", "user <num> not found".into()),
        ("timeout", "timeout after <num>ms calling <str>".into()),
        ("declined", "payment <uuid> declined".into()),
        ("long", format!("disk full: {}…", "a".repeat(189))),
        ("silent", "(no message)".into()),
    ]
}

fn kind_of(signature: &str) -> &'static str {
    kinds()
        .into_iter()
        .find(|(_, known)| known == signature)
        .unwrap_or_else(|| panic!("unexpected signature {signature:?}"))
        .0
}

/// Lines of two hours, 10:00 to 12:00, one every 3 seconds per service.
fn logs() -> String {
    let mut text = String::new();
    let services = ["api", "payments", "search"];
    for second in (0..7200).step_by(3) {
        for (index, service) in services.iter().enumerate() {
            let at = second + index as u32;
            let ts = format!(
                "2026-11-24T{:02}:{:02}:{:02}.{:03}Z",
                10 + at / 3600,
                at / 60 % 60,
                at % 60,
                (at * 37) % 1000
            );
            let latency = 20 + (at * 7919 + index as u32 * 104_729) % 3000;
            let n = at * 31 + index as u32;
            let (level, status, message, kind) = match (service, at % 50) {
                (&"api", 0) => ("error", 500, format!("user {n} not found"), "missing"),
                (&"api" | &"search", 25) => (
                    "warn",
                    504,
                    format!("timeout after {}ms calling 'db-{}'", latency, n % 7),
                    "timeout",
                ),
                // payments fails from 11:30 on (11:30:01.837 first), with a message never seen
                // before.
                (&"payments", 1 | 2) if at >= 5400 => (
                    "error",
                    200,
                    format!("payment {:08x}-1111-4222-8333-{:012x} declined", n, n),
                    "declined",
                ),
                _ => ("info", 200, "request completed".to_string(), "none"),
            };
            let id = format!("{:08x}-aaaa-4bbb-8ccc-{:012x}", at, index);
            writeln!(
                text,
                r#"{{"ts":"{ts}","service":"{service}","level":"{level}","msg":"{message}","request_id":"{id}","status":{status},"latency_ms":{latency},"method":"GET","endpoint":"/api/v1/items/{n}","metadata":{{"kind":"{kind}"}}}}"#
            )
            .unwrap();
        }
    }
    // An error whose message is too long for the error lines' index, and one with none.
    writeln!(
        text,
        r#"{{"ts":"2026-11-24T11:40:00.500Z","service":"search","level":"fatal","msg":"disk full: {}","metadata":{{"kind":"long"}}}}"#,
        "a".repeat(3000)
    )
    .unwrap();
    writeln!(
        text,
        r#"{{"ts":"2026-11-24T11:41:00Z","service":"api","status":503,"metadata":{{"kind":"silent"}}}}"#
    )
    .unwrap();
    // One request across three services, and one with a UUIDv7 id across two.
    for (ts, service, message, latency, id) in [
        (
            "2026-11-24T10:30:00.100Z",
            "api",
            "request received",
            0,
            TRACED,
        ),
        (
            "2026-11-24T10:30:00.112500Z",
            "payments",
            "charging card",
            0,
            TRACED,
        ),
        (
            "2026-11-24T10:30:00.152Z",
            "search",
            "indexing order",
            0,
            TRACED,
        ),
        (
            "2026-11-24T10:30:01.900Z",
            "api",
            "request completed",
            1800,
            TRACED,
        ),
        (
            "2026-11-24T11:45:00.010Z",
            "api",
            "request received",
            0,
            TRACED_V7,
        ),
        (
            "2026-11-24T11:45:00.250Z",
            "search",
            "request completed",
            240,
            TRACED_V7,
        ),
        (
            "2026-11-24T11:50:00Z",
            "api",
            "request received",
            0,
            "req-42",
        ),
        (
            "2026-11-24T11:50:00.020Z",
            "search",
            "request completed",
            20,
            "req-42",
        ),
    ] {
        writeln!(
            text,
            r#"{{"ts":"{ts}","service":"{service}","level":"info","msg":"{message}","request_id":"{id}","latency_ms":{latency},"metadata":{{"kind":"trace"}}}}"#
        )
        .unwrap();
    }
    text
}

/// A command, then the one-hour window the tests look at.
fn windowed<'a>(command: &[&'a str]) -> Vec<&'a str> {
    let mut args = command.to_vec();
    args.extend(WINDOW);
    args
}

/// The database, loaded once; the tests only read it, except the one that builds the
/// request-id index on its own database.
fn loaded() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| load("errors_trace"))
}

fn load(tag: &str) -> TestDb {
    let db = TestDb::with_schema(tag);
    let dir = scratch_dir(tag);
    let file = dir.join("app.ndjson");
    std::fs::write(&file, logs()).unwrap();
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    db
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    loaded().logctl_json(&all)
}

fn rfc3339(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// What plain SQL says of each kind of error line in a window: count, first, last and
/// services.
fn sql_errors(from: &str, until: &str) -> Vec<(String, i64, String, String, String)> {
    loaded()
        .query(&format!(
            "SELECT l.metadata->>'kind', count(*), \
                    to_char(min(l.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), \
                    to_char(max(l.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), \
                    string_agg(DISTINCT s.service_name, ', ' ORDER BY s.service_name) \
             FROM log_events l JOIN services s USING (service_id) \
             WHERE (l.status >= 500 OR l.level IN ('error', 'fatal')) \
               AND l.created_at >= '{from}' AND l.created_at < '{until}' \
             GROUP BY 1 ORDER BY 1"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

fn micros(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The report's rows as the SQL above has them, with the kind found from the signature.
fn report_errors(json: &serde_json::Value) -> Vec<(String, i64, String, String, String)> {
    let mut rows: Vec<_> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                kind_of(row["signature"].as_str().unwrap()).to_string(),
                row["count"].as_i64().expect("count is a JSON number"),
                micros(rfc3339(&row["first_seen"])),
                micros(rfc3339(&row["last_seen"])),
                row["services"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn errors_equal_plain_sql_by_signature() {
    let report = json(&windowed(&["errors", "--limit", "0"]));
    let expected = sql_errors("2026-11-24T11:00:00Z", "2026-11-24T12:00:00Z");
    assert_eq!(expected.len(), 5, "five kinds of error in the window");
    assert_eq!(report_errors(&report), expected);
    let declined = expected.iter().find(|row| row.0 == "declined").unwrap();
    assert_eq!(
        declined.2, "2026-11-24T11:30:01.837000",
        "payments fails from 11:30 on"
    );
    let ids: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row["request_id"].as_str())
        .collect();
    for id in ids {
        let line = loaded().count(&format!(
            "SELECT count(*) FROM log_events WHERE request_id = '{id}' \
             AND (status >= 500 OR level = 'error')"
        ));
        assert_eq!(
            line, 1,
            "the sample request id {id} is one of its error lines"
        );
    }
    // The limit keeps the most frequent.
    let top = json(&windowed(&["errors", "--limit", "1"]));
    let most = expected.iter().max_by_key(|row| row.1).unwrap();
    assert_eq!(report_errors(&top), vec![most.clone()]);
    // A filter narrows them as SQL does.
    assert_eq!(
        report_errors(&json(&windowed(&["errors", "--service", "payments"]))),
        vec![declined.clone()],
        "only payments"
    );
}

#[test]
fn new_lists_the_signatures_the_period_before_lacks() {
    let report = json(&windowed(&["errors", "--new"]));
    let signatures: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["signature"].as_str().unwrap())
        .collect();
    // The most frequent first, then the latest.
    let long = format!("disk full: {}…", "a".repeat(189));
    assert_eq!(
        signatures,
        vec!["payment <uuid> declined", "(no message)", long.as_str()],
        "the three kinds that begin in the window"
    );
    assert_eq!(report["errors"][0]["count_before"], 0);
    assert_eq!(report["errors"][0]["count_change"], serde_json::Value::Null);
    assert_eq!(report["errors"][0]["new"], true);
    // --compare prev gives every signature its count the hour before.
    let compared = json(&windowed(&["errors", "--compare", "prev"]));
    let before = sql_errors("2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z");
    for row in compared["errors"].as_array().unwrap() {
        let kind = kind_of(row["signature"].as_str().unwrap());
        let expected = before.iter().find(|b| b.0 == kind).map_or(0, |b| b.1);
        assert_eq!(row["count_before"].as_i64(), Some(expected), "{kind}");
        let count = row["count"].as_f64().unwrap();
        let change = (expected > 0).then(|| {
            let change = (count - expected as f64) / expected as f64;
            (change * 1000.0).round() / 1000.0
        });
        assert_eq!(row["count_change"].as_f64(), change, "{kind}");
        assert_eq!(row["new"], serde_json::json!(expected == 0), "{kind}");
    }
    // Before payments fails, nothing is new against the half hour before.
    let earlier = loaded().logctl_json(&[
        "errors",
        "--since",
        "2026-11-24T11:00:00Z",
        "--until",
        "2026-11-24T11:29:00Z",
        "--new",
        "--format",
        "json",
    ]);
    assert_eq!(earlier["errors"].as_array().unwrap().len(), 0);
}

fn trace(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    db.logctl(&all).output().unwrap()
}

/// (service, gap_ms) of each line of a trace.
fn lines(output: &std::process::Output) -> Vec<(String, Option<f64>)> {
    assert_success(output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["service"].as_str().unwrap().to_string(),
                line["gap_ms"].as_f64(),
            )
        })
        .collect()
}

#[test]
fn trace_follows_one_request_across_three_services() {
    let db = loaded();
    let expected = vec![
        ("api".to_string(), None),
        ("payments".to_string(), Some(12.5)),
        ("search".to_string(), Some(39.5)),
        ("api".to_string(), Some(1748.0)),
    ];
    let around = trace(
        db,
        &[
            TRACED,
            "--around",
            "2026-11-24T10:31:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(lines(&around), expected);
    let window = trace(
        db,
        &[
            TRACED,
            "--since",
            "2026-11-24T10:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(lines(&window), expected);
    assert!(
        stderr(&window).contains("schema --trace-index"),
        "a search by time says what the index would spare: {}",
        stderr(&window)
    );
    // A version 7 id is found around its own time, with no flags.
    let v7 = trace(db, &[TRACED_V7, "--format", "json"]);
    assert_eq!(
        lines(&v7),
        vec![
            ("api".to_string(), None),
            ("search".to_string(), Some(240.0))
        ]
    );
    // An id that is not a UUID is looked for in metadata, and says so.
    let text_id = trace(
        db,
        &[
            "req-42",
            "--since",
            "2026-11-24T11:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        lines(&text_id),
        vec![
            ("api".to_string(), None),
            ("search".to_string(), Some(20.0))
        ]
    );
    assert!(
        stderr(&text_id).contains("not a UUID"),
        "{}",
        stderr(&text_id)
    );
    // An unknown id: a message that says where it looked and what there is, exit 8.
    let unknown = trace(db, &["0b7e0a52-1111-4222-8333-444455556666"]);
    assert_exit(&unknown, 8);
    assert_eq!(
        stdout(&unknown),
        "",
        "the reason is a diagnostic, on stderr"
    );
    let text = stderr(&unknown);
    assert!(text.contains("No line has this request id"), "{text}");
    assert!(
        text.contains("The newest event is from 2026-11-24 11:59:59"),
        "{text}"
    );
    assert!(text.contains("api, payments, search"), "{text}");
}

#[test]
fn the_trace_index_finds_any_id_at_any_time() {
    let db = load("trace_index");
    assert_success(&db.logctl(&["schema", "--trace-index"]).output().unwrap());
    let found = trace(&db, &[TRACED, "--format", "json"]);
    assert_eq!(lines(&found).len(), 4);
    assert!(
        !stderr(&found).contains("--trace-index"),
        "{}",
        stderr(&found)
    );
    let help = db
        .logctl(&["bench", "write-penalty", "--help"])
        .output()
        .unwrap();
    assert_success(&help);
    assert_success(
        &db.logctl(&["schema", "--drop-trace-index"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'log_events_request_id_idx'"),
        0
    );
}

/// Per service, what plain SQL says of all its requests with a latency in the window and
/// of those above 1000 ms.
fn sql_services() -> Vec<(String, i64, f64, f64, f64, i64)> {
    loaded()
        .query(
            "SELECT s.service_name, count(*), \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), \
                    count(*) FILTER (WHERE latency_ms > 1000) \
             FROM log_events l JOIN services s USING (service_id) \
             WHERE latency_ms IS NOT NULL \
               AND created_at >= '2026-11-24T11:00:00Z' AND created_at < '2026-11-24T12:00:00Z' \
             GROUP BY 1 ORDER BY 1",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

fn slow_services(extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["slow", "--threshold", "1000"];
    args.extend(WINDOW);
    args.extend_from_slice(extra);
    let mut services = json(&args)["services"].as_array().unwrap().clone();
    services.sort_by_key(|s| s["service"].as_str().unwrap().to_string());
    services
}

#[test]
fn slow_shows_each_services_own_requests_and_percentiles() {
    let expected = sql_services();
    let close = |got: f64, want: f64, within: f64| (got - want).abs() <= want * within + 0.05;
    for (exact, within) in [(true, 0.0), (false, 0.01)] {
        let flags: &[&str] = if exact { &["--exact"] } else { &[] };
        let services = slow_services(flags);
        assert_eq!(services.len(), expected.len());
        for (got, want) in services.iter().zip(&expected) {
            let what = format!("{} (exact: {exact})", want.0);
            assert_eq!(got["service"], want.0.as_str());
            assert_eq!(got["requests"].as_i64(), Some(want.1), "{what}");
            assert_eq!(got["slow_requests"].as_i64(), Some(want.5), "{what}");
            let percent = (want.5 as f64 * 10_000.0 / want.1 as f64).round() / 100.0;
            assert_eq!(got["slow_percent"].as_f64(), Some(percent), "{what}");
            for (key, value) in [
                ("all_p50_ms", want.2),
                ("all_p95_ms", want.3),
                ("all_p99_ms", want.4),
            ] {
                let shown = got[key].as_f64().unwrap();
                assert!(
                    close(shown, value, within),
                    "{what} {key}: {shown} vs {value}"
                );
            }
            assert!(
                got["slow_p50_ms"].as_f64().unwrap() > 1000.0,
                "the slow requests' own percentiles stay apart"
            );
        }
    }
}

#[test]
fn slow_compares_each_services_figures_with_the_hour_before() {
    let before = |sql: &str| -> Vec<(String, i64, i64, Option<f64>)> {
        loaded()
            .query(sql)
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    };
    let expected = before(
        "SELECT s.service_name, count(*), count(*) FILTER (WHERE latency_ms > 1000), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) \
                    FILTER (WHERE latency_ms > 1000) \
         FROM log_events l JOIN services s USING (service_id) \
         WHERE latency_ms IS NOT NULL \
           AND created_at >= '2026-11-24T10:00:00Z' AND created_at < '2026-11-24T11:00:00Z' \
         GROUP BY 1 ORDER BY 1",
    );
    let services = slow_services(&["--exact", "--compare", "prev"]);
    assert!(!services.is_empty());
    for got in &services {
        let service = got["service"].as_str().unwrap();
        let want = expected.iter().find(|row| row.0 == service);
        let (requests, slow, slow_p99) = want.map_or((0, 0, None), |w| (w.1, w.2, w.3));
        assert_eq!(got["requests_before"].as_i64(), Some(requests), "{service}");
        assert_eq!(
            got["slow_requests_before"].as_i64(),
            Some(slow),
            "{service}"
        );
        let shown = got["slow_p99_ms_before"].as_f64();
        assert_eq!(
            shown,
            slow_p99.map(|p| (p * 10.0).round() / 10.0),
            "{service}"
        );
        let now = got["requests"].as_f64().unwrap();
        let change = (requests > 0).then(|| {
            let change = (now - requests as f64) / requests as f64;
            (change * 1000.0).round() / 1000.0
        });
        assert_eq!(got["requests_change"].as_f64(), change, "{service}");
    }
}

#[test]
fn text_never_splits_a_number_time_or_id_and_has_no_escapes() {
    let db = loaded();
    let report = json(&windowed(&["errors", "--limit", "0"]));
    let mut whole: Vec<String> = Vec::new();
    for row in report["errors"].as_array().unwrap() {
        whole.push(row["count"].to_string());
        whole.extend(row["request_id"].as_str().map(str::to_string));
        for key in ["first_seen", "last_seen"] {
            whole.push(
                rfc3339(&row[key])
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string(),
            );
        }
    }
    for width in [60, 80, 200] {
        let width_flag = width.to_string();
        for command in [
            vec!["errors", WINDOW[0], WINDOW[1], WINDOW[2], WINDOW[3]],
            vec!["trace", TRACED, "--around", "2026-11-24T10:31:00Z"],
        ] {
            let mut args = command.clone();
            args.extend(["--width", &width_flag]);
            let output = db.logctl(&args).env("NO_COLOR", "1").output().unwrap();
            assert_success(&output);
            let text = stdout(&output);
            assert!(!text.contains('\x1b'), "no escapes when piped:\n{text}");
            // The database line names the test cluster's socket, a path with no space.
            for line in text.lines().filter(|line| !line.contains("logctl@")) {
                assert!(
                    unicode_width::UnicodeWidthStr::width(line) <= width,
                    "{command:?} at {width} columns: {line:?}"
                );
            }
            let expected: Vec<String> = if command[0] == "errors" {
                whole.clone()
            } else {
                vec![
                    TRACED.to_string(),
                    "2026-11-24 10:30:00.112".to_string(),
                    "1748.000".to_string(),
                ]
            };
            for value in &expected {
                assert!(
                    text.lines().any(|line| line.contains(value.as_str())),
                    "{command:?} at {width}: {value} whole on a line\n{text}"
                );
            }
        }
    }
}
