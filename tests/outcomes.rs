//! Each outcome of a load, as cron sees it (the exit code) and as a person reads it
//! (the summary): nothing to load, a line waiting for its newline, only bytes already
//! loaded, a directory's files chosen by name, and reject reasons in words.

mod common;

use std::path::Path;

use common::*;

const LINE: &str = r#"{"ts":"2026-11-24T10:00:00Z","service":"api","latency_ms":12}"#;

fn load(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    db.logctl(&all).output().unwrap()
}

fn json_summary(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_load_that_finds_nothing_to_read_exits_6_and_says_so() {
    let db = TestDb::with_schema("nothing");
    let dir = scratch_dir("nothing");
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = load(&db, &[path(&empty)]);
    assert_exit(&output, 6);
    assert!(
        stderr(&output).contains("nothing to load"),
        "{}",
        stderr(&output)
    );

    let pattern = format!("{}/*.ndjson", empty.display());
    let output = load(&db, &[&pattern]);
    assert_exit(&output, 6);
    assert!(
        stderr(&output).contains("matches no files"),
        "{}",
        stderr(&output)
    );

    let notes = dir.join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("readme.txt"), format!("{LINE}\n")).unwrap();
    let output = load(&db, &[path(&notes)]);
    assert_exit(&output, 6);
    let err = stderr(&output);
    assert!(
        err.contains("1 other file was left out") && err.contains("--include"),
        "{err}"
    );
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);

    let included = load(&db, &[path(&notes), "--include", "*.txt"]);
    assert_success(&included);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 1);
}

#[test]
fn a_directory_loads_its_log_files_and_leaves_the_others() {
    let db = TestDb::with_schema("log_names");
    let dir = scratch_dir("log_names");
    let names = [
        "app.ndjson",
        "app.log.1",
        "events.jsonl",
        "readme.txt",
        "notes.md",
    ];
    for (index, name) in names.iter().enumerate() {
        // Each its own content: files that begin alike are taken for one file rotated.
        let line = LINE.replace("12}", &format!("{index}}}"));
        std::fs::write(dir.join(name), format!("{line}\n")).unwrap();
    }
    let output = load(&db, &[path(&dir), "--format", "json"]);
    assert_success(&output);
    assert_eq!(json_summary(&output)["files"], 3);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3);
}

#[test]
fn a_line_without_its_newline_is_said_to_wait_and_never_called_loaded() {
    let db = TestDb::with_schema("waiting");
    let dir = scratch_dir("waiting");
    // One short line, and one longer than the kilobyte a file is identified by.
    let short = dir.join("short.ndjson");
    std::fs::write(&short, LINE).unwrap();
    let long = dir.join("long.ndjson");
    let long_line = format!(
        r#"{{"ts":"2026-11-24T10:00:00Z","service":"api","message":"{}"}}"#,
        "x".repeat(3000)
    );
    std::fs::write(&long, &long_line).unwrap();
    for (file, bytes) in [(&short, LINE.len()), (&long, long_line.len())] {
        for _ in 0..2 {
            let output = load(&db, &[path(file)]);
            assert_success(&output);
            let err = stderr(&output);
            assert!(
                err.contains(&format!(
                    "1 input ending in a line without its newline ({bytes} bytes), which waits"
                )),
                "{err}"
            );
            assert!(!err.contains("already loaded"), "{err}");
            let json = json_summary(&load(&db, &[path(file), "--format", "json"]));
            assert_eq!(json["files_waiting"], 1, "{json}");
            assert_eq!(json["files_already_loaded"], 0, "{json}");
            assert_eq!(json["pending_bytes"], bytes, "{json}");
        }
    }
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);

    // Once the newline comes, the line loads, and then the file is already loaded.
    std::fs::write(&short, format!("{LINE}\n")).unwrap();
    assert_success(&load(&db, &[path(&short)]));
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 1);
    let again = load(&db, &[path(&short)]);
    assert_success(&again);
    assert!(
        stderr(&again).contains("1 input already loaded, nothing new"),
        "{}",
        stderr(&again)
    );
    assert!(!stderr(&again).contains("waits"), "{}", stderr(&again));
}

#[test]
fn an_empty_file_is_said_to_be_empty() {
    let db = TestDb::with_schema("empty_file");
    let dir = scratch_dir("empty_file");
    let file = dir.join("empty.ndjson");
    std::fs::write(&file, "").unwrap();
    let output = load(&db, &[path(&file)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("1 input empty"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn reject_reasons_say_what_was_expected_where() {
    let db = TestDb::with_schema("reasons");
    let dir = scratch_dir("reasons");
    let file = dir.join("bad.ndjson");
    std::fs::write(&file, format!("hello\n{{\"ts\": nul}}\n{LINE}\n")).unwrap();
    let rejects = dir.join("rejects.ndjson");
    let output = load(&db, &[path(&file), "--rejects", path(&rejects)]);
    assert_exit(&output, 4);
    let reasons: Vec<String> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["reason"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "not JSON: expected a JSON value: an object such as {\"ts\": ...} at byte 1, found `hello`",
            "not JSON: expected `null` (text must be in double quotes) at byte 8, found `nul}`",
        ]
    );
}
