//! Log shapes in the wild, recognised per line without configuration, and field
//! mapping for anything else: each file loads into the right typed columns, checked
//! row by row against values written out by hand.

mod common;

use common::*;

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

#[allow(clippy::too_many_arguments)]
fn event(
    time: &str,
    service: &str,
    level: Option<&str>,
    message: Option<&str>,
    endpoint: Option<&str>,
    method: Option<&str>,
    status: Option<i32>,
    latency_ms: Option<i32>,
    request_id: Option<&str>,
) -> Event {
    Event {
        created_at_micros: micros(time),
        service: service.into(),
        level: level.map(Into::into),
        message: message.map(Into::into),
        endpoint: endpoint.map(Into::into),
        method: method.map(Into::into),
        status,
        latency_ms,
        request_id: request_id.map(Into::into),
    }
}

fn load_shape_file(name: &str, extra: &[&str]) -> (TestDb, serde_json::Value) {
    let db = TestDb::with_schema(&format!("shape_{name}"));
    let path = format!(
        "{}/tests/data/shapes/{name}.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut args = vec!["load", "--format", "json", &path];
    args.extend_from_slice(extra);
    let output = db.logctl(&args).output().unwrap();
    assert_success(&output);
    let summary = serde_json::from_slice(&output.stdout).unwrap();
    (db, summary)
}

fn assert_rows(name: &str, mut expected: Vec<Event>) {
    let (db, summary) = load_shape_file(name, &[]);
    assert_eq!(summary["rejected"], 0);
    expected.sort();
    assert_eq!(loaded_events(&db), expected);
}

#[test]
fn elastic_common_schema_nested_and_dotted() {
    assert_rows(
        "ecs",
        vec![
            event(
                "2026-11-24T10:00:00.123Z",
                "orders-api",
                Some("info"),
                Some("GET /api/orders 200"),
                Some("/api/orders"),
                Some("GET"),
                Some(200),
                Some(153),
                Some("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
            ),
            event(
                "2026-11-24T10:00:01.5Z",
                "payments",
                Some("error"),
                Some("payment failed"),
                Some("/api/pay?x=1"),
                Some("POST"),
                Some(502),
                Some(2500),
                Some("0af76519-16cd-43dd-8448-eb211c80319c"),
            ),
        ],
    );
}

#[test]
fn pino_and_bunyan_numeric_levels_and_req_res() {
    assert_rows(
        "pino",
        vec![
            event(
                "2026-11-24T10:00:00Z",
                "checkout",
                Some("info"),
                Some("request completed"),
                Some("/cart"),
                Some("GET"),
                Some(200),
                Some(12),
                None,
            ),
            event(
                "2026-11-24T10:00:02Z",
                "checkout",
                Some("error"),
                Some("db timeout"),
                None,
                None,
                None,
                None,
                None,
            ),
            event(
                "2026-11-24T10:00:03.25Z",
                "billing",
                Some("warn"),
                Some("slow upstream"),
                Some("/invoices/9"),
                Some("PUT"),
                Some(201),
                Some(2300),
                None,
            ),
        ],
    );
}

#[test]
fn zap_epoch_seconds_and_durations() {
    assert_rows(
        "zap",
        vec![
            event(
                "2026-11-24T10:00:00.25Z",
                "search",
                Some("info"),
                Some("handled request"),
                Some("/search"),
                Some("GET"),
                Some(200),
                Some(42),
                None,
            ),
            event(
                "2026-11-24T10:00:01.5Z",
                "indexer",
                Some("warn"),
                Some("slow build"),
                None,
                None,
                None,
                Some(2500),
                None,
            ),
        ],
    );
}

#[test]
fn slog_nanosecond_times_and_durations() {
    assert_rows(
        "slog",
        vec![
            event(
                "2026-11-24T09:00:05.123457Z",
                "gateway",
                Some("info"),
                Some("request"),
                Some("/v1/items/3"),
                Some("DELETE"),
                Some(204),
                Some(35),
                None,
            ),
            event(
                "2026-11-24T10:00:06Z",
                "gateway",
                Some("error"),
                Some("upstream failed"),
                None,
                None,
                None,
                Some(1200),
                None,
            ),
        ],
    );
}

#[test]
fn nginx_access_logs_with_request_lines_and_string_numbers() {
    assert_rows(
        "nginx",
        vec![
            event(
                "2026-11-24T10:00:07Z",
                "nginx",
                None,
                None,
                Some("/static/app.js?v=3"),
                Some("GET"),
                Some(200),
                Some(4),
                Some("f0a3b2c1-d4e5-f607-1829-3a4b5c6d7e8f"),
            ),
            event(
                "2026-11-24T10:00:08Z",
                "uploads.example.com",
                None,
                None,
                Some("/api/upload"),
                Some("POST"),
                Some(504),
                Some(60001),
                None,
            ),
        ],
    );
}

#[test]
fn docker_json_file_lines_with_and_without_inner_json() {
    let (db, summary) = load_shape_file("docker", &[]);
    assert_eq!(summary["rejected"], 0);
    let mut expected = vec![
        event(
            "2026-11-24T10:00:09Z",
            "worker",
            Some("info"),
            Some("job done"),
            None,
            None,
            None,
            Some(812),
            None,
        ),
        event(
            "2026-11-24T10:00:10.5Z",
            "docker",
            None,
            Some("plain text line from a container"),
            None,
            None,
            None,
            None,
            None,
        ),
        event(
            "2026-11-24T10:00:11Z",
            "worker",
            Some("error"),
            Some("no time in here"),
            None,
            None,
            None,
            None,
            None,
        ),
    ];
    expected.sort();
    assert_eq!(loaded_events(&db), expected);
    let streams: Vec<String> = db
        .query("SELECT metadata->>'stream' FROM log_events ORDER BY created_at")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(streams, ["stdout", "stderr", "stderr"]);
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE metadata ? 'log'"),
        0,
        "the wrapper's log text is not kept twice"
    );
}

#[test]
fn metadata_keeps_nested_objects_and_adds_the_canonical_fields() {
    let (db, _) = load_shape_file("ecs", &[]);
    let metadata: serde_json::Value = serde_json::from_str(
        &db.query("SELECT metadata::text FROM log_events WHERE message = 'payment failed'")[0]
            .get::<_, String>(0),
    )
    .unwrap();
    assert_eq!(metadata["http"]["response"]["status_code"], 502);
    assert_eq!(metadata["service"]["version"], "1.4.2");
    assert_eq!(metadata["latency_ms"], 2500);
    assert_eq!(metadata["status"], 502);
    assert_eq!(metadata["endpoint"], "/api/pay?x=1");
}

#[test]
fn a_forced_shape_reads_every_line_its_way() {
    // Read as generic, zap's float-seconds `duration` is not a latency and `logger` is
    // not a service, so the second line has no service.
    let db = TestDb::with_schema("forced");
    let path = format!(
        "{}/tests/data/shapes/zap.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    let output = db
        .logctl(&["load", "--shape", "generic", "--format", "json", &path])
        .output()
        .unwrap();
    assert_exit(&output, 4);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (summary["loaded"].as_u64(), summary["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        stderr(&output).contains("no service"),
        "{}",
        stderr(&output)
    );
    let latencies: Vec<Option<i32>> = db
        .query("SELECT latency_ms FROM log_events")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(latencies, [None]);
    let output = logctl_bare(&["load", "--shape", "log4j", &path])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("unknown shape"),
        "{}",
        stderr(&output)
    );
}

const CUSTOM: &str = r#"{"event":{"created":"2026-11-24T10:00:12Z"},"app":"custom-svc","timings":{"total":0.75},"text":"hi","op":{"verb":"patch"}}"#;

#[test]
fn mappings_from_flags_and_from_a_config_file() {
    let dir = scratch_dir("mappings");
    let file = dir.join("custom.ndjson");
    std::fs::write(&file, format!("{CUSTOM}\n")).unwrap();
    let expected = vec![event(
        "2026-11-24T10:00:12Z",
        "custom-svc",
        None,
        Some("hi"),
        None,
        Some("PATCH"),
        None,
        Some(750),
        None,
    )];

    let db = TestDb::with_schema("mapflags");
    let output = db
        .logctl(&[
            "load",
            file.to_str().unwrap(),
            "--map",
            "created_at=event.created",
            "--map",
            "latency_ms=timings.total:s",
            "--map",
            "service=app",
            "--map",
            "message=text",
            "--map",
            "method=op.verb",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(loaded_events(&db), expected);

    let config = dir.join("logctl.toml");
    std::fs::write(
        &config,
        "default_service = \"custom-svc\"\n[map]\ncreated_at = \"event.created\"\nlatency_ms = \"timings.total:s\"\nmessage = \"text\"\nmethod = \"op.verb\"\n",
    )
    .unwrap();
    let db = TestDb::with_schema("mapconfig");
    let output = db
        .logctl(&[
            "load",
            "--config",
            config.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(loaded_events(&db), expected);

    std::fs::write(&config, "shapes = \"ecs\"\n").unwrap();
    let output = db
        .logctl(&[
            "load",
            "--config",
            config.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("shapes"), "{}", stderr(&output));
    assert_exit(
        &db.logctl(&["load", "--map", "latency=x", file.to_str().unwrap()])
            .output()
            .unwrap(),
        2,
    );
}

#[test]
fn the_shape_examples_load_without_rejects() {
    let db = TestDb::with_schema("shape_examples");
    let dir = format!("{}/examples/shapes", env!("CARGO_MANIFEST_DIR"));
    let summary = db.logctl_json(&["load", "--format", "json", &dir]);
    assert_eq!(summary["rejected"], 0);
    assert!(summary["loaded"].as_u64().unwrap() >= 70);
    assert!(db.count("SELECT count(*) FROM log_events WHERE latency_ms IS NOT NULL") >= 40);
}
