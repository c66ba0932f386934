//! Time-partitioned log_events: loads create the partitions they need (racing loaders
//! included), prune drops whole partitions beside a running load, and the reports and
//! the ledger behave exactly as on a plain table.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// Generated logs spread over several days: `lines` lines at noon of each day.
fn days_file(dir: &Path, name: &str, days: &[u32], lines: u64) -> PathBuf {
    let path = dir.join(name);
    let mut content = Vec::new();
    for day in days {
        let part = generated_file(dir, &format!("{name}.{day}"), lines, u64::from(*day));
        let text = std::fs::read(&part).unwrap();
        // Move each part to its day (the generator starts every file at --start).
        let shifted = String::from_utf8(text)
            .unwrap()
            .replace("2026-11-24T", &format!("2026-11-{day:02}T"));
        content.extend_from_slice(shifted.as_bytes());
    }
    std::fs::write(&path, content).unwrap();
    path
}

fn partitions(db: &TestDb) -> Vec<(String, i64)> {
    db.query(
        "SELECT c.relname::text, (SELECT count(*) FROM log_events l WHERE l.tableoid = c.oid) \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'log_events'::regclass ORDER BY 1",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn partitioned_db(tag: &str, interval: &str) -> TestDb {
    let db = TestDb::empty(tag);
    let output = db
        .logctl(&["schema", "--partition", interval])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(
        stderr(&output).contains(&format!("partitioned by {interval}")),
        "{}",
        stderr(&output)
    );
    db
}

#[test]
fn a_load_spanning_days_creates_one_partition_per_day_and_loads_every_line_once() {
    let db = partitioned_db("part_days", "day");
    let dir = scratch_dir("part_days");
    let file = days_file(&dir, "days.ndjson", &[20, 21, 22, 23, 24], 200);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let expected: Vec<(String, i64)> = (20..=24)
        .map(|d| (format!("log_events_202611{d}"), 200))
        .collect();
    assert_eq!(partitions(&db), expected);
    assert_eq!(loaded_events(&db), expected_events(&file));
    // The ledger works the same: nothing new the second time.
    let again = db
        .logctl(&["load", "--format", "json", file.to_str().unwrap()])
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["loaded"], 0);
    // `schema` on the database tells which variant it holds, and refuses another.
    let schema = db.logctl(&["schema"]).output().unwrap();
    assert!(
        stderr(&schema).contains("partitioned by day"),
        "{}",
        stderr(&schema)
    );
    assert_exit(
        &db.logctl(&["schema", "--partition", "month"])
            .output()
            .unwrap(),
        1,
    );
}

#[test]
fn week_and_month_partitions_start_on_monday_and_the_first() {
    let db = partitioned_db("part_weeks", "week");
    let dir = scratch_dir("part_weeks");
    let file = days_file(&dir, "days.ndjson", &[22, 23, 24, 30], 50);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    // 2026-11-22 is a Sunday: its week starts on Monday the 16th.
    let names: Vec<String> = partitions(&db).into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "log_events_20261116",
            "log_events_20261123",
            "log_events_20261130"
        ]
    );
    let db = partitioned_db("part_months", "month");
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(partitions(&db), [("log_events_20261101".to_string(), 200)]);
}

#[test]
fn two_loaders_racing_on_new_days_both_succeed_and_load_once() {
    let db = partitioned_db("part_race", "day");
    let dir = scratch_dir("part_race");
    let a = days_file(&dir, "a.ndjson", &[10, 11, 12, 13, 14, 15], 300);
    let b = days_file(&dir, "b.ndjson", &[15, 14, 13, 12, 11, 10], 300);
    let children: Vec<_> = [&a, &b]
        .iter()
        .map(|file| {
            db.logctl(&["load", file.to_str().unwrap(), "--batch-bytes", "16KiB"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert_success(&child.wait_with_output().unwrap());
    }
    assert_eq!(partitions(&db).len(), 6);
    let mut expected = expected_events(&a);
    expected.extend(expected_events(&b));
    expected.sort();
    assert_eq!(loaded_events(&db), expected);
}

#[test]
fn prune_drops_old_partitions_while_a_load_goes_on() {
    let db = partitioned_db("part_prune", "day");
    let dir = scratch_dir("part_prune");
    let old = days_file(&dir, "old.ndjson", &[1, 2, 3], 100);
    assert_success(
        &db.logctl(&["load", old.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let new = days_file(&dir, "new.ndjson", &[20, 21], 5000);
    let load = db
        .logctl(&["load", new.to_str().unwrap(), "--batch-bytes", "16KiB"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dry = db
        .logctl(&[
            "prune",
            "--older-than",
            "2026-11-03T00:00:00Z",
            "--dry-run",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_success(&dry);
    let listed: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let names: Vec<&str> = listed["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partition"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["log_events_20261101", "log_events_20261102"]);
    assert_eq!(listed["partitions"][0]["rows"], 100);
    assert_eq!(
        partitions(&db)
            .iter()
            .filter(|(n, _)| n.ends_with("20261101"))
            .count(),
        1,
        "a dry run drops nothing"
    );
    let pruned = db
        .logctl(&["prune", "--older-than", "2026-11-03T00:00:00Z"])
        .output()
        .unwrap();
    assert_success(&pruned);
    assert_success(&load.wait_with_output().unwrap());
    let names: Vec<String> = partitions(&db).into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "log_events_20261103",
            "log_events_20261120",
            "log_events_20261121"
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE created_at >= '2026-11-20'"),
        10_000
    );
    // The ledger still knows the pruned lines: they are not loaded again.
    let again = db
        .logctl(&["load", "--format", "json", old.to_str().unwrap()])
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["loaded"], 0);
}

#[test]
fn prune_on_a_plain_table_deletes_in_batches() {
    let db = TestDb::with_schema("plain_prune");
    let dir = scratch_dir("plain_prune");
    let file = days_file(&dir, "days.ndjson", &[1, 2, 3], 1000);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let output = db
        .logctl(&[
            "prune",
            "--older-than",
            "2026-11-03T00:00:00Z",
            "--batch-rows",
            "300",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["deleted"][0]["rows"], 2000);
    assert_eq!(json["deleted"][0]["batches"], 7);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 1000);
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE created_at < '2026-11-03'"),
        0
    );
}

#[test]
fn reports_are_the_same_on_partitioned_and_plain_tables() {
    let dir = scratch_dir("part_reports");
    let file = days_file(&dir, "days.ndjson", &[20, 21, 22], 2000);
    let plain = TestDb::with_schema("reports_plain");
    let partitioned = partitioned_db("reports_partitioned", "day");
    let report = |db: &TestDb, args: &[&str]| {
        let mut all = vec!["slow", "--format", "json", "--threshold", "2000"];
        all.extend_from_slice(args);
        let output = db.logctl(&all).output().unwrap();
        assert_success(&output);
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    for db in [&plain, &partitioned] {
        assert_success(
            &db.logctl(&["load", file.to_str().unwrap()])
                .output()
                .unwrap(),
        );
    }
    for args in [
        &[][..],
        &["--limit", "50"],
        &["--service", "search"],
        &["--since", "2026-11-21T06:00:00Z"],
    ] {
        assert_eq!(
            report(&plain, args),
            report(&partitioned, args),
            "slow {args:?}"
        );
    }
    let status = |db: &TestDb| {
        let output = db.logctl(&["status", "--format", "json"]).output().unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["sources"][0]
            .as_object_mut()
            .unwrap()
            .remove("last_loaded_at");
        json
    };
    assert_eq!(status(&plain), status(&partitioned));
}
