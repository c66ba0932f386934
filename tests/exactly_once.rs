//! Exactly once: re-runs, growing files, partial last lines, rotation, SIGKILL at
//! random moments, SIGINT, a terminated backend and racing loaders all end with
//! every valid line in log_events once.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use sha2::Digest;

fn load(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    db.logctl(&all).output().unwrap()
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[test]
fn loading_the_same_file_twice_loads_nothing_new_and_says_so() {
    let db = TestDb::with_schema("twice");
    let dir = scratch_dir("twice");
    let file = generated_file(&dir, "a.ndjson", 2000, 1);
    assert_success(&load(&db, &[file.to_str().unwrap()]));
    let again = load(&db, &[file.to_str().unwrap(), "--format", "json"]);
    assert_success(&again);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["loaded"], 0);
    assert_eq!(summary["files_already_loaded"], 1);
    let text = load(&db, &[file.to_str().unwrap()]);
    assert!(
        stderr(&text).contains("already loaded"),
        "{}",
        stderr(&text)
    );
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn a_grown_file_loads_only_its_new_lines_and_a_partial_line_waits() {
    let db = TestDb::with_schema("grow");
    let dir = scratch_dir("grow");
    let file = generated_file(&dir, "a.ndjson", 1000, 2);
    let more = std::fs::read_to_string(generated_file(&dir, "more.ndjson", 300, 3)).unwrap();
    assert_success(&load(&db, &[file.to_str().unwrap()]));
    let (first, rest) = more.split_at(more.len() / 2);
    append(&file, first);
    let output = load(&db, &[file.to_str().unwrap(), "--format", "json"]);
    assert_success(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        summary["pending_bytes"].as_u64().unwrap() > 0,
        "the half line waits: {summary}"
    );
    assert_eq!(
        summary["rejected"], 0,
        "a partial last line is not a reject"
    );
    let complete_lines = first.matches('\n').count() as i64;
    assert_eq!(
        db.count("SELECT count(*) FROM log_events"),
        1000 + complete_lines
    );
    append(&file, rest);
    assert_success(&load(&db, &[file.to_str().unwrap()]));
    assert_loaded_exactly(&db, &[&file]);
    // The ledger reports the file as one complete stretch.
    let status: serde_json::Value = serde_json::from_slice(
        &db.logctl(&["status", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let source = &status["sources"][0];
    assert_eq!(source["lines"], 1300);
    assert_eq!(source["loaded"], 1300);
    assert_eq!(source["complete"], true);
}

#[test]
fn renamed_and_compressed_rotations_are_not_loaded_again_but_a_new_file_is() {
    let db = TestDb::with_schema("rotate");
    let dir = scratch_dir("rotate");
    let live = generated_file(&dir, "app.log", 500, 4);
    assert_success(&load(&db, &[live.to_str().unwrap()]));
    // logrotate: app.log -> app.log.1.gz, and a new app.log starts.
    let rotated = dir.join("app.log.1.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&rotated).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&std::fs::read(&live).unwrap()).unwrap();
    encoder.finish().unwrap();
    let old = dir.join("old.ndjson");
    std::fs::rename(&live, &old).unwrap();
    let fresh = generated_file(&dir, "app.log", 200, 5);
    let pattern = format!("{}/app.log*", dir.display());
    let output = load(&db, &[&pattern, "--format", "json"]);
    assert_success(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["loaded"], 200, "{summary}");
    assert_loaded_exactly(&db, &[&old, &fresh]);
}

/// Waits until the count that `count_sql` reads reaches `at_least` (or the child ended).
fn wait_until(db: &TestDb, child: &mut Child, count_sql: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count(count_sql) < at_least {
        assert!(Instant::now() < deadline, "no commits within a minute");
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The batches the ledger shows committed.
const COMMITTED_BATCHES: &str = "SELECT count(*) FROM logctl_ranges";

#[test]
fn sigkill_at_random_moments_then_re_runs_load_every_line_exactly_once() {
    let db = TestDb::with_schema("sigkill");
    let dir = scratch_dir("sigkill");
    let file = generated_file(&dir, "big.ndjson", 40_000, 6);
    // Batches commit one by one only when indexes are kept (into an empty table, the
    // default rebuilds them in one transaction: see rebuild_* below).
    let args = [
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--quiet",
        "--index-strategy",
        "keep",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut kills = 0;
    for _ in 0..5 {
        let mut child = spawn_load(&db, &args);
        let before = db.count("SELECT count(*) FROM log_events");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Killed once this run has committed a random number of rows (up to 3,000 of the
        // 40,000), then a moment more: counted in rows rather than time, so that a fast
        // build cannot load the whole file before the kills.
        let rows = before + 1 + (seed % 3_000) as i64;
        wait_until(&db, &mut child, "SELECT count(*) FROM log_events", rows);
        std::thread::sleep(Duration::from_millis(seed % 20));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 3, "most kills landed mid-load ({kills})");
    let partial = db.count("SELECT count(*) FROM log_events");
    assert!(
        partial > 0 && partial < 40_000,
        "killed runs committed part of the file: {partial}"
    );
    assert_success(&load(&db, &args));
    assert_loaded_exactly(&db, &[&file]);
}

/// A killed run's last COMMIT can land after the next run read the ledger (the server
/// finishes what it received), so a batch of the next run may find part of its range
/// committed already. Played here by holding the source's commit lock while the load's
/// batches wait on it, committing lines 3 and 4 "as another loader", and letting go:
/// every other line is loaded once, and the ledger has no gap left.
#[test]
fn the_lines_beside_a_range_another_loader_committed_meanwhile_are_loaded() {
    let db = TestDb::with_schema("overlap");
    let dir = scratch_dir("overlap");
    let file = generated_file(&dir, "a.ndjson", 2000, 8);
    let content = std::fs::read_to_string(&file).unwrap();
    let key: [u8; 32] = sha2::Sha256::digest(&content.as_bytes()[..1024]).into();
    let lock = i32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let mut holder = db.client();
    holder
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&logctl::db::locks::SOURCE_COMMIT, &lock],
        )
        .unwrap();
    let args = [
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--index-strategy",
        "keep",
    ];
    let child = spawn_load(&db, &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 0
    {
        assert!(
            Instant::now() < deadline,
            "no batch waited on the commit lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let offset_of = |index: usize| lines[..index].iter().map(|l| l.len() as i64).sum::<i64>();
    holder
        .execute(
            "INSERT INTO logctl_ranges (source_key, start_offset, end_offset, start_line, \
             end_line, loaded_rows, rejected_lines) VALUES ($1, $2, $3, 3, 5, 2, 0)",
            &[&key.as_slice(), &offset_of(2), &offset_of(4)],
        )
        .unwrap();
    holder
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&logctl::db::locks::SOURCE_COMMIT, &lock],
        )
        .unwrap();
    assert_success(&child.wait_with_output().unwrap());
    assert_rollups_match(&db);
    let mut expected: Vec<Event> = lines
        .iter()
        .enumerate()
        .filter(|(index, _)| !(2..4).contains(index))
        .map(|(_, line)| expected_event(line.trim_end()))
        .collect();
    expected.sort();
    assert_eq!(
        db.count("SELECT count(*) FROM log_events"),
        1998,
        "row count"
    );
    assert_eq!(loaded_events(&db), expected, "every line but 3 and 4, once");
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_ranges"),
        1,
        "the ledger holds the whole file as one range"
    );
}

#[test]
fn sigint_commits_what_is_in_flight_and_exits_130() {
    stop_with_signal(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_stops_the_same_way() {
    stop_with_signal(libc::SIGTERM, "sigterm");
}

fn stop_with_signal(signal: i32, tag: &str) {
    let db = TestDb::with_schema(tag);
    let dir = scratch_dir(tag);
    let file = generated_file(&dir, "big.ndjson", 40_000, 7);
    let args = [
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--index-strategy",
        "keep",
    ];
    let mut child = spawn_load(&db, &args);
    wait_until(&db, &mut child, COMMITTED_BATCHES, 3);
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 130);
    let err = stderr(&output);
    // Shown if a check below fails.
    eprintln!("the stopped load said: {err}");
    assert!(err.contains("interrupted"), "{err}");
    let committed = db.count("SELECT count(*) FROM log_events");
    assert!(committed < 40_000, "stopped early");
    assert!(
        err.contains(&format!("loaded {committed} of")),
        "the summary tells what was committed: {err}"
    );
    assert_eq!(
        db.count("SELECT coalesce(sum(loaded_rows), 0)::bigint FROM logctl_ranges"),
        committed
    );
    let again = load(&db, &args);
    assert_success(&again);
    eprintln!("the load run again said: {}", stderr(&again));
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn a_terminated_backend_is_reported_and_a_re_run_completes() {
    let db = TestDb::with_schema("terminate");
    let dir = scratch_dir("terminate");
    let file = generated_file(&dir, "big.ndjson", 40_000, 8);
    let args = [
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--index-strategy",
        "keep",
    ];
    let mut child = spawn_load(&db, &args);
    wait_until(&db, &mut child, COMMITTED_BATCHES, 3);
    db.query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND application_name = 'logctl' AND pid <> pg_backend_pid()",
        db.name
    ));
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        // The load finished before the terminations landed: nothing to check mid-load.
        assert_loaded_exactly(&db, &[&file]);
        return;
    }
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("connection"),
        "{}",
        stderr(&output)
    );
    assert_success(&load(&db, &args));
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn four_loaders_on_the_same_three_files_load_every_line_once() {
    let db = TestDb::with_schema("race");
    let dir = scratch_dir("race");
    let files: Vec<_> = (0..3)
        .map(|i| generated_file(&dir, &format!("f{i}.ndjson"), 8000, 20 + i))
        .collect();
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1]];
    let strategies = ["keep", "auto", "keep", "auto"];
    let runs: Vec<Vec<&str>> = orders
        .iter()
        .zip(strategies)
        .map(|(order, strategy)| {
            let mut args: Vec<&str> = order.iter().map(|&i| names[i]).collect();
            args.extend([
                "--batch-bytes",
                "64KiB",
                "--quiet",
                "--index-strategy",
                strategy,
            ]);
            args
        })
        .collect();
    load_at_once(&db, &runs);
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    assert_loaded_exactly(&db, &paths);
}

#[test]
fn dry_run_validates_and_touches_nothing() {
    let db = TestDb::with_schema("dry");
    let dir = scratch_dir("dry");
    let file = generated_file(&dir, "a.ndjson", 300, 9);
    append(&file, "not json\n");
    let output = logctl_bare(&[
        "load",
        "--dry-run",
        "--format",
        "json",
        file.to_str().unwrap(),
    ])
    .env("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    .output()
    .unwrap();
    assert_exit(&output, 4);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["loaded"], 300);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["dry_run"], true);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
}

/// The table's indexes and key constraints, as `name: definition`.
fn indexes_and_keys(db: &TestDb) -> Vec<String> {
    db.query(
        "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE tablename = 'log_events' \
         UNION ALL SELECT conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'log_events'::regclass AND contype IN ('p', 'f', 'u') ORDER BY 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn a_rebuild_load_builds_the_indexes_again_and_reports_it() {
    let db = TestDb::with_schema("rebuild");
    let before = indexes_and_keys(&db);
    assert_eq!(before.len(), 7, "{before:?}");
    let dir = scratch_dir("rebuild");
    let file = generated_file(&dir, "a.ndjson", 5000, 12);
    let output = load(&db, &[file.to_str().unwrap(), "--format", "json"]);
    assert_success(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["rebuilt_indexes"], true,
        "an empty table is loaded with the rebuild strategy"
    );
    assert_eq!(indexes_and_keys(&db), before);
    assert_loaded_exactly(&db, &[&file]);
    // A table with rows keeps its indexes under auto.
    let more = generated_file(&dir, "b.ndjson", 500, 13);
    let output = load(&db, &[more.to_str().unwrap(), "--format", "json"]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rebuilt_indexes"], false);
    assert_loaded_exactly(&db, &[&file, &more]);
}

#[test]
fn a_rebuild_load_killed_or_cut_off_midway_leaves_the_indexes_and_no_rows() {
    let db = TestDb::with_schema("rebuild_kill");
    let before = indexes_and_keys(&db);
    let dir = scratch_dir("rebuild_kill");
    let file = generated_file(&dir, "big.ndjson", 40_000, 14);
    let args = [
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--index-strategy",
        "rebuild",
    ];
    // A kill: the server rolls the whole transaction back, indexes included.
    let mut child = spawn_load(&db, &args);
    wait_until_copying(&db, &mut child, "log_events");
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(indexes_and_keys(&db), before);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
    assert_eq!(db.count("SELECT count(*) FROM logctl_ranges"), 0);
    // A connection cut off by the server: the same, and the loader says so.
    let mut child = spawn_load(&db, &args);
    wait_until_copying(&db, &mut child, "log_events");
    db.query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' \
         AND application_name = 'logctl' AND pid <> pg_backend_pid()",
        db.name
    ));
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 3);
    assert_eq!(indexes_and_keys(&db), before);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
    // Then a complete run.
    assert_success(&load(&db, &args));
    assert_eq!(indexes_and_keys(&db), before);
    assert_loaded_exactly(&db, &[&file]);
}
