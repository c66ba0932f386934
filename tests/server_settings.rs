//! Server settings an operator may have on the database (`ALTER DATABASE ... SET`):
//! timeouts that cut idle sessions and idle transactions, and serializable as the
//! default isolation. Loads finish with every line exactly once and exit 0, and a
//! server out of a resource exits 3 like a lost connection.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Whether the loader's index-rebuild transaction is idle between two batches (its last
/// statement a COPY or a savepoint's; the load's liveness transaction is idle too, all
/// the time, and frees itself from the timeout the same way).
fn rebuild_idle_in_transaction(db: &TestDb) -> bool {
    db.count(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
         AND application_name = 'logctl' AND state = 'idle in transaction' \
         AND (query LIKE 'COPY log_events%' OR query LIKE '%SAVEPOINT logctl_batch')",
        db.name
    )) > 0
}

#[test]
fn a_slow_stdin_under_idle_in_transaction_session_timeout_loads_every_line() {
    let db = TestDb::with_schema("idle_xact_stdin");
    db.alter_database_set("idle_in_transaction_session_timeout", "1s");
    let dir = scratch_dir("idle_xact_stdin");
    let source = generated_file(&dir, "slow.ndjson", 4, 21);
    let lines: Vec<String> = std::fs::read_to_string(&source)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut child = db
        .logctl(&["load", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in &lines {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_success(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rebuilt_indexes"], false, "stdin keeps the indexes");
    assert_loaded_exactly(&db, &[&source]);
}

#[test]
fn an_index_rebuild_paused_while_idle_in_its_transaction_outlives_the_timeout() {
    let db = TestDb::with_schema("idle_xact_rebuild");
    db.alter_database_set("idle_in_transaction_session_timeout", "1s");
    let dir = scratch_dir("idle_xact_rebuild");
    let file = generated_file(&dir, "big.ndjson", 40_000, 22);
    let mut child = spawn_load(
        &db,
        &[
            file.to_str().unwrap(),
            "--batch-bytes",
            "32KiB",
            "--format",
            "json",
        ],
    );
    // Pause the loader while its rebuild transaction is idle between two batches,
    // for longer than the timeout.
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut paused = false;
    while !paused && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if !rebuild_idle_in_transaction(&db) {
            continue;
        }
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        if rebuild_idle_in_transaction(&db) {
            std::thread::sleep(Duration::from_millis(2500));
            paused = true;
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let output = child.wait_with_output().unwrap();
    assert!(paused, "never caught the transaction idle");
    assert_success(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rebuilt_indexes"], true);
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn idle_session_timeout_cuts_idle_connections_and_the_load_still_succeeds_and_compacts() {
    let db = TestDb::with_schema("idle_session");
    db.alter_database_set("idle_session_timeout", "1s");
    let dir = scratch_dir("idle_session");
    let files = [
        generated_file(&dir, "a.ndjson", 30_000, 23),
        generated_file(&dir, "b.ndjson", 30_000, 24),
    ];
    let started = Instant::now();
    let output = db
        .logctl(&[
            "load",
            files[0].to_str().unwrap(),
            files[1].to_str().unwrap(),
            "--batch-bytes",
            "64KiB",
            "--jobs",
            "1",
            "--index-strategy",
            "keep",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the load must outlast the timeout"
    );
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    assert_loaded_exactly(&db, &[&files[0], &files[1]]);
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_ranges"),
        2,
        "one range per file"
    );
    assert_eq!(db.count("SELECT count(*) FROM logctl_claims"), 0);
}

#[test]
fn racing_loaders_under_serializable_default_isolation_load_every_line_once() {
    let db = TestDb::empty("serializable");
    db.alter_database_set("default_transaction_isolation", "serializable");
    assert_success(&db.logctl(&["schema"]).output().unwrap());
    let dir = scratch_dir("serializable");
    let mut all = Vec::new();
    for round in 0..3u64 {
        let files = [
            generated_file(&dir, &format!("a{round}.ndjson"), 6_000, 30 + round),
            generated_file(&dir, &format!("b{round}.ndjson"), 6_000, 40 + round),
        ];
        let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
        let args = vec![a, b, "--batch-bytes", "32KiB"];
        let reversed = vec![b, a, "--batch-bytes", "32KiB"];
        load_at_once(&db, &[args.clone(), reversed, args]);
        all.extend(files);
    }
    let paths: Vec<&std::path::Path> = all.iter().map(|p| p.as_path()).collect();
    assert_loaded_exactly(&db, &paths);
    assert_eq!(db.count("SELECT count(*) FROM logctl_ranges"), 6);
    assert_success(&db.logctl(&["status"]).output().unwrap());
    assert_success(&db.logctl(&["slow"]).output().unwrap());
}

#[test]
fn a_server_out_of_a_resource_exits_3_like_a_lost_connection() {
    let db = TestDb::with_schema("resources");
    // Building the primary key over these rows spills its sort to temporary files,
    // which the limit refuses: SQLSTATE 53400, in the class of a full disk.
    db.alter_database_set("maintenance_work_mem", "1MB");
    db.alter_database_set("temp_file_limit", "64kB");
    let dir = scratch_dir("resources");
    let file = generated_file(&dir, "big.ndjson", 40_000, 25);
    let output = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(err.contains("ran out of a resource"), "{err}");
    assert!(err.contains("temp_file_limit"), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
}
