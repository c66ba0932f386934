//! `logctl load` end to end: every valid line exactly once with the right typed
//! values, rejects reported with their line numbers, summaries and exit codes.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

#[test]
fn every_line_of_a_generated_file_is_loaded_once_with_its_typed_values() {
    let db = TestDb::with_schema("typed");
    let dir = scratch_dir("typed");
    let file = generated_file(&dir, "app.ndjson", 3000, 11);
    let output = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3000);
    assert_eq!(
        db.count("SELECT count(DISTINCT event_id) FROM log_events"),
        3000
    );
    assert_eq!(loaded_events(&db), expected_events(&file));
    // Each service once, however many lines named it.
    assert_eq!(db.count("SELECT count(*) FROM services"), 20);
    assert!(
        stderr(&output).contains("loaded 3000 of 3000 lines"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn metadata_keeps_the_dynamic_fields_and_the_request_fields_by_their_names() {
    let db = TestDb::with_schema("metadata");
    let dir = scratch_dir("metadata");
    let file = dir.join("m.ndjson");
    std::fs::write(
        &file,
        concat!(
            r#"{"ts":"2026-11-24T10:00:00Z","service":"api","level":"INFO","msg":"done","latency_ms":2500,"endpoint":"/a","status":"503","user":{"id":7,"tags":["x","y"]},"metadata":{"region":"eu","method":"get"}}"#,
            "\n",
            r#"{"time":"2026-11-24T10:00:01.5+02:00","service_name":"worker","message":"tick","metadata":{"latency_ms":12.6,"queue":"high"}}"#,
            "\n"
        ),
    )
    .unwrap();
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let rows = db.query(
        "SELECT s.service_name, l.level, l.method, l.status::int, l.latency_ms, l.metadata::text, \
         l.created_at = '2026-11-24T08:00:01.5Z'::timestamptz \
         FROM log_events l JOIN services s USING (service_id) ORDER BY s.service_name",
    );
    assert_eq!(rows.len(), 2);
    let api = &rows[0];
    assert_eq!(api.get::<_, String>(0), "api");
    assert_eq!(api.get::<_, Option<String>>(1).as_deref(), Some("info"));
    assert_eq!(api.get::<_, Option<String>>(2).as_deref(), Some("GET"));
    assert_eq!(api.get::<_, Option<i32>>(3), Some(503));
    assert_eq!(api.get::<_, Option<i32>>(4), Some(2500));
    let metadata: serde_json::Value = serde_json::from_str(&api.get::<_, String>(5)).unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({"user":{"id":7,"tags":["x","y"]},"region":"eu","endpoint":"/a","method":"GET","status":503,"latency_ms":2500})
    );
    let worker = &rows[1];
    assert_eq!(worker.get::<_, Option<i32>>(4), Some(13));
    assert!(worker.get::<_, bool>(6), "the +02:00 offset is applied");
    let metadata: serde_json::Value = serde_json::from_str(&worker.get::<_, String>(5)).unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({"queue":"high","latency_ms":13})
    );
}

#[test]
fn the_tutorial_query_over_metadata_returns_the_same_rows_as_the_typed_columns() {
    let db = TestDb::with_schema("tutorial");
    let dir = scratch_dir("tutorial");
    let file = generated_file(&dir, "app.ndjson", 4000, 3);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let tutorial: Vec<(String, String, Option<String>)> = db
        .query(
            "SELECT s.service_name, l.created_at, l.metadata->>'latency_ms' AS latency, l.metadata->>'endpoint' AS endpoint \
             FROM log_events l JOIN services s ON l.service_id = s.service_id \
             WHERE (l.metadata->>'latency_ms')::int > 2000 ORDER BY (l.metadata->>'latency_ms')::int DESC LIMIT 5;",
        )
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(2).unwrap(), r.get(3)))
        .collect();
    let typed: Vec<(String, String, Option<String>)> = db
        .query(
            "SELECT s.service_name, l.latency_ms::text, l.endpoint FROM log_events l JOIN services s USING (service_id) \
             WHERE l.latency_ms > 2000 ORDER BY l.latency_ms DESC LIMIT 5",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(tutorial.len(), 5);
    let latencies = |rows: &[(String, String, Option<String>)]| {
        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()
    };
    assert_eq!(latencies(&tutorial), latencies(&typed));
}

fn write_lines(path: &std::path::Path, lines: &[&str]) {
    let mut file = std::fs::File::create(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

const GOOD_1: &str = r#"{"ts":"2026-11-24T10:00:00Z","service":"api","msg":"one","latency_ms":10}"#;
const GOOD_2: &str = r#"{"ts":"2026-11-24T10:00:02Z","service":"api","msg":"two","latency_ms":20}"#;
const GOOD_3: &str =
    r#"{"ts":"2026-11-24T10:00:03Z","service":"api","msg":"three","latency_ms":30}"#;

#[test]
fn bad_lines_are_rejected_with_their_line_numbers_and_the_rest_is_loaded() {
    let db = TestDb::with_schema("rejects");
    let dir = scratch_dir("rejects");
    let file = dir.join("mixed.ndjson");
    write_lines(
        &file,
        &[
            GOOD_1,
            "{not json",
            r#"{"service":"api","msg":"no time"}"#,
            GOOD_2,
            r#"{"ts":"2026-11-24T10:00:00Z","msg":"no service"}"#,
            r#"{"ts":"yesterday","service":"api"}"#,
            GOOD_3,
        ],
    );
    let output = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&output, 4);
    let err = stderr(&output);
    let name = file.to_str().unwrap();
    for (line, reason) in [
        (2, "not JSON: expected a key in double quotes"),
        (3, "no timestamp"),
        (5, "no service"),
        (6, "`ts`"),
    ] {
        assert!(
            err.contains(&format!("rejected {name}:{line} ")),
            "line {line} in:\n{err}"
        );
        let reported = err
            .lines()
            .find(|l| l.contains(&format!("{name}:{line} ")))
            .unwrap();
        assert!(reported.contains(reason), "{reported}");
    }
    let messages: Vec<String> = db
        .query("SELECT message FROM log_events ORDER BY created_at")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(messages, ["one", "two", "three"]);

    // The same rejects as NDJSON records in a reject file.
    let db = TestDb::with_schema("rejects_file");
    let rejects = dir.join("rejects.ndjson");
    let output = db
        .logctl(&[
            "load",
            "--rejects",
            rejects.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_exit(&output, 4);
    assert!(
        !stderr(&output).contains("rejected "),
        "rejects went to the file"
    );
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<i64> = records
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 5, 6]);
    assert_eq!(records[0]["text"], "{not json");
    assert_eq!(records[0]["file"], name);
    assert_eq!(
        records[0]["offset"].as_u64().unwrap() as usize,
        GOOD_1.len() + 1
    );
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3);
}

#[test]
fn stdin_loads_and_the_json_summary_is_one_object_on_stdout() {
    let db = TestDb::with_schema("stdin");
    let mut child = db
        .logctl(&["load", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("{GOOD_1}\n\n{GOOD_2}\nnot json\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 4);
    let summary: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(summary["lines_read"], 4);
    assert_eq!(summary["loaded"], 2);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["blank"], 1);
    assert!(summary["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 2);
}

#[test]
fn the_summary_is_one_line_without_a_terminal_and_quiet_silences_it() {
    let db = TestDb::with_schema("summary");
    let dir = scratch_dir("summary");
    let file = dir.join("a.ndjson");
    write_lines(&file, &[GOOD_1, GOOD_2]);
    let output = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
    let other = dir.join("b.ndjson");
    write_lines(&other, &[GOOD_3]);
    let output = db
        .logctl(&["load", "--quiet", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3);
}

#[test]
fn max_errors_stops_the_load_with_its_own_exit_code() {
    let db = TestDb::with_schema("max_errors");
    let dir = scratch_dir("max_errors");
    let file = dir.join("bad.ndjson");
    let mut lines = vec![GOOD_1];
    lines.extend(std::iter::repeat_n("garbage", 5));
    write_lines(&file, &lines);
    let output = db
        .logctl(&["load", "--max-errors", "2", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&output, 5);
    assert!(
        stderr(&output).contains("--max-errors") || stderr(&output).contains("more than 2"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn max_errors_stops_a_rebuild_load_early_and_a_re_run_loads_the_rest_once() {
    let db = TestDb::with_schema("max_errors_rebuild");
    let dir = scratch_dir("max_errors_rebuild");
    let clean = generated_file(&dir, "clean.ndjson", 20_000, 3);
    let text = std::fs::read_to_string(&clean).unwrap();
    let mut lines: Vec<&str> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if number % 100 == 50 {
            lines.push("garbage");
        }
        lines.push(line);
    }
    let file = dir.join("sometimes_bad.ndjson");
    write_lines(&file, &lines);
    let args = [
        "load",
        "--format",
        "json",
        "--batch-bytes",
        "16KiB",
        file.to_str().unwrap(),
    ];
    let mut stopped = args.to_vec();
    stopped.extend(["--max-errors", "2"]);
    let output = db.logctl(&stopped).output().unwrap();
    assert_exit(&output, 5);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rebuilt_indexes"], true, "{summary}");
    let loaded = db.count("SELECT count(*) FROM log_events");
    assert!(loaded < 10_000, "the load went on to {loaded} rows");
    assert_eq!(summary["loaded"].as_i64(), Some(loaded), "{summary}");
    // The rest, with the rest of the rejects (exit code 4).
    assert_exit(&db.logctl(&args).output().unwrap(), 4);
    assert_eq!(loaded_events(&db), expected_events(&clean));
}

#[test]
fn loading_without_a_schema_says_to_create_it() {
    let db = TestDb::empty("noschema");
    let dir = scratch_dir("noschema");
    let file = dir.join("a.ndjson");
    write_lines(&file, &[GOOD_1]);
    let output = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("logctl schema"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn status_does_not_call_a_source_complete_when_its_load_was_rolled_back() {
    let db = TestDb::with_schema("status_rollback");
    let dir = scratch_dir("status_rollback");
    let file = generated_file(&dir, "app.ndjson", 40_000, 12);
    let args = [file.to_str().unwrap(), "--batch-bytes", "32KiB"];
    // Killed inside its one index-building transaction: the source is in the ledger,
    // none of its rows or ranges.
    let mut child = spawn_load(&db, &args);
    wait_until_copying(&db, &mut child, "log_events");
    child.kill().unwrap();
    child.wait().unwrap();
    let status = |db: &TestDb| {
        let output = db.logctl(&["status", "--format", "json"]).output().unwrap();
        assert_success(&output);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["sources"][0].clone()
    };
    let rolled_back = status(&db);
    assert_eq!(rolled_back["lines"], 0, "{rolled_back}");
    assert_eq!(rolled_back["complete"], false, "{rolled_back}");
    assert_success(&spawn_load(&db, &args).wait_with_output().unwrap());
    let loaded = status(&db);
    assert_eq!(loaded["lines"], 40_000, "{loaded}");
    assert_eq!(loaded["complete"], true, "{loaded}");
}
