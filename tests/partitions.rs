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

fn partition_names(db: &TestDb) -> Vec<String> {
    partitions(db).into_iter().map(|(name, _)| name).collect()
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
    assert_eq!(
        partition_names(&db),
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
    load_at_once(
        &db,
        &[
            vec![a.to_str().unwrap(), "--batch-bytes", "16KiB"],
            vec![b.to_str().unwrap(), "--batch-bytes", "16KiB"],
        ],
    );
    assert_eq!(partitions(&db).len(), 6);
    assert_loaded_exactly(&db, &[&a, &b]);
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
    assert_eq!(
        partition_names(&db),
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
    let dry_run = db.logctl_json(&[
        "prune",
        "--older-than",
        "2026-11-03",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(dry_run["prune"][0]["cutoff"], "2026-11-03T00:00:00Z");
    assert_eq!(dry_run["prune"][0]["dry_run"], true);
    assert_eq!(dry_run["prune"][0]["action"], "would delete rows");
    assert_eq!(dry_run["prune"][0]["rows"], 2000);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3000);
    let json = db.logctl_json(&[
        "prune",
        "--older-than",
        "2026-11-03T00:00:00Z",
        "--batch-rows",
        "300",
        "--format",
        "json",
    ]);
    assert_eq!(json["prune"][0]["action"], "deleted rows");
    assert_eq!(json["prune"][0]["rows"], 2000);
    assert_eq!(json["prune"][0]["batches"], 7);
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

/// The partitions' indexes and constraints, as `partition: definition`.
fn partition_indexes(db: &TestDb, partition: &str) -> Vec<String> {
    db.query(&format!(
        "SELECT regexp_replace(indexdef, 'log_events_\\d+', 'P', 'g') FROM pg_indexes WHERE tablename = '{partition}' \
         UNION ALL SELECT contype::text || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = '{partition}'::regclass ORDER BY 1"
    ))
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn new_partitions_are_built_after_their_rows_and_existing_ones_keep_theirs() {
    let db = partitioned_db("part_rebuild", "day");
    let dir = scratch_dir("part_rebuild");
    let first = days_file(&dir, "first.ndjson", &[20], 500);
    let output = db
        .logctl(&["load", "--format", "json", first.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    let reference = partition_indexes(&db, "log_events_20261120");
    assert_eq!(reference.len(), 9, "{reference:?}");
    // Day 20 exists; 21 and 22 are new, and a batch spans 21 and 20. (The file starts
    // with another day than `first`, or it would be the same source, grown.)
    let more = days_file(&dir, "more.ndjson", &[21, 20, 22], 3000);
    let summary = db.logctl_json(&[
        "load",
        "--format",
        "json",
        "--batch-bytes",
        "256KiB",
        more.to_str().unwrap(),
    ]);
    assert_eq!(summary["rebuilt_indexes"], true, "{summary}");
    for day in ["log_events_20261121", "log_events_20261122"] {
        assert_eq!(
            partition_indexes(&db, day),
            reference,
            "{day} has the same indexes and keys"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM pg_class WHERE relname LIKE 'logctl_staging%'"),
        0
    );
    assert_loaded_exactly(&db, &[&first, &more]);
    assert_eq!(
        partitions(&db),
        [
            ("log_events_20261120".to_string(), 3500),
            ("log_events_20261121".to_string(), 3000),
            ("log_events_20261122".to_string(), 3000)
        ]
    );
}

#[test]
fn a_killed_new_partition_load_leaves_no_partition_behind() {
    let db = partitioned_db("part_rebuild_kill", "day");
    let (first, more, mut loader) = start_new_partition_load(&db, "part_rebuild_kill", &[20]);
    let before = vec![("log_events_20261120".to_string(), 300)];
    loader.kill();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        partitions(&db),
        before,
        "the new days' partitions went with the transaction"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_class WHERE relname LIKE 'logctl_staging%'"),
        0
    );
    assert_success(
        &db.logctl(&["load", more.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_loaded_exactly(&db, &[&first, &more]);
}

/// Loads 300 lines on each of `old_days` of November 2026, then starts a load of 20,000
/// lines on each of the 21st and 22nd, and returns (with both files) once it is copying
/// into its new partitions' staging table.
fn start_new_partition_load(
    db: &TestDb,
    tag: &str,
    old_days: &[u32],
) -> (PathBuf, PathBuf, Loader) {
    let dir = scratch_dir(tag);
    let first = days_file(&dir, "first.ndjson", old_days, 300);
    assert_success(
        &db.logctl(&["load", first.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let more = days_file(&dir, "more.ndjson", &[21, 22], 20_000);
    let mut loader = Loader(Some(spawn_load(
        db,
        &[more.to_str().unwrap(), "--batch-bytes", "32KiB"],
    )));
    wait_until_copying(db, loader.0.as_mut().unwrap(), "logctl_staging");
    (first, more, loader)
}

/// A running loader. If the test fails, it is resumed (when paused) and killed, so no
/// stopped process outlives the test.
struct Loader(Option<std::process::Child>);

impl Loader {
    fn signal(&self, signal: libc::c_int) {
        let pid = self.0.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn kill(&mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the load's end, for two minutes at most.
    fn finish(mut self) -> std::process::Output {
        wait_within(self.0.take().unwrap(), 120)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many locks the backend of a load's new-partition transaction (the holder of
/// its advisory lock "logcpart") holds on `relation`.
fn rebuild_session_locks_on(db: &TestDb, relation: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_locks l WHERE l.relation = '{relation}'::regclass AND l.pid IN \
         (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted \
          AND classid = x'6c6f6763'::int AND objid = x'70617274'::bigint::oid AND objsubid = 1)"
    ))
}

#[test]
fn a_new_partition_load_locks_nothing_that_prune_or_other_loaders_need() {
    let db = partitioned_db("part_rebuild_locks", "day");
    let (_, _, loader) = start_new_partition_load(&db, "part_rebuild_locks", &[19, 20]);
    // Paused in the middle of its long transaction, the load must hold no lock on
    // log_events: one would make prune and the creation of partitions wait for the
    // whole load, and DETACH CONCURRENTLY deadlock with the final ATTACH.
    loader.pause();
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = x'6c6f6763'::int AND objid = x'70617274'::bigint::oid AND objsubid = 1 AND granted"
        ),
        1,
        "the load is in its new-partition transaction"
    );
    assert_eq!(rebuild_session_locks_on(&db, "log_events"), 0);
    let pruned = run_within(
        &mut db.logctl(&["prune", "--older-than", "2026-11-20T00:00:00Z"]),
        30,
    );
    assert_success(&pruned);
    db.client()
        .batch_execute("SET lock_timeout = '5s'; SELECT logctl_ensure_partition('2026-11-25')")
        .unwrap();
    loader.resume();
    assert_success(&loader.finish());
    assert_eq!(
        partition_names(&db),
        [
            "log_events_20261120",
            "log_events_20261121",
            "log_events_20261122",
            "log_events_20261125"
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE created_at >= '2026-11-21'"),
        40_000
    );
}

#[test]
fn a_day_another_loader_creates_first_is_filled_as_an_existing_partition() {
    let db = partitioned_db("part_rebuild_first", "day");
    let (first, more, loader) = start_new_partition_load(&db, "part_rebuild_first", &[20]);
    loader.pause();
    // Still on the 21st: it has not taken the 22nd's partition name yet.
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 1819240293 \
             AND objid::bigint = hashtext('log_events_20261122')::bigint & 4294967295"
        ),
        0,
        "the paused load already reached the 22nd; give it more lines on the 21st"
    );
    let dir = scratch_dir("part_rebuild_first_other");
    let other = days_file(&dir, "other.ndjson", &[22], 500);
    let keep = run_within(
        &mut db.logctl(&["load", other.to_str().unwrap(), "--index-strategy", "keep"]),
        30,
    );
    assert_success(&keep);
    loader.resume();
    assert_success(&loader.finish());
    assert_loaded_exactly(&db, &[&first, &more, &other]);
    assert_eq!(
        partitions(&db),
        [
            ("log_events_20261120".to_string(), 300),
            ("log_events_20261121".to_string(), 20_000),
            ("log_events_20261122".to_string(), 20_500)
        ]
    );
    let reference = partition_indexes(&db, "log_events_20261120");
    assert_eq!(partition_indexes(&db, "log_events_20261121"), reference);
    assert_eq!(partition_indexes(&db, "log_events_20261122"), reference);
}

/// Loads 500 lines on each of two new days into a partitioned table changed by `setup`,
/// and returns the load's JSON summary once 1,000 rows are there.
fn load_new_days_after(tag: &str, setup: &str) -> (TestDb, serde_json::Value) {
    let db = partitioned_db(tag, "day");
    db.client().batch_execute(setup).unwrap();
    let dir = scratch_dir(tag);
    let file = days_file(&dir, "days.ndjson", &[20, 21], 500);
    let output = db
        .logctl(&["load", "--format", "json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        db.count("SELECT count(DISTINCT event_id) FROM log_events"),
        1000
    );
    (db, serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn the_users_row_triggers_see_every_row_of_new_partitions() {
    let (db, summary) = load_new_days_after(
        "part_triggers",
        "CREATE FUNCTION mark_seen() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN NEW.message := 'seen'; RETURN NEW; END $$; \
         CREATE TRIGGER mark_seen BEFORE INSERT ON log_events \
         FOR EACH ROW EXECUTE FUNCTION mark_seen()",
    );
    assert_eq!(summary["rebuilt_indexes"], false, "{summary}");
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE message = 'seen'"),
        1000
    );
}

#[test]
fn the_users_columns_get_their_defaults_in_new_partitions() {
    let (db, summary) = load_new_days_after(
        "part_defaults",
        "ALTER TABLE log_events ADD COLUMN ingested_at timestamptz NOT NULL DEFAULT now(), \
         ADD COLUMN origin text DEFAULT 'logctl'",
    );
    assert_eq!(summary["rebuilt_indexes"], true, "{summary}");
    assert_eq!(
        db.count(
            "SELECT count(*) FROM log_events WHERE ingested_at IS NOT NULL AND origin = 'logctl'"
        ),
        1000
    );
}

#[test]
fn generated_columns_and_publications_keep_the_indexes() {
    for (tag, setup) in [
        (
            "part_generated",
            "ALTER TABLE log_events ADD COLUMN slow boolean \
             GENERATED ALWAYS AS (latency_ms > 2000) STORED",
        ),
        (
            "part_published",
            "CREATE PUBLICATION everything FOR ALL TABLES",
        ),
    ] {
        let (_, summary) = load_new_days_after(tag, setup);
        assert_eq!(summary["rebuilt_indexes"], false, "{tag}: {summary}");
    }
}

#[test]
fn a_keep_loader_creating_the_same_new_day_waits_for_the_rebuilding_one() {
    let db = partitioned_db("part_rebuild_keep", "day");
    let (first, more, loader) = start_new_partition_load(&db, "part_rebuild_keep", &[20]);
    // Day 21 is in the other load's staging table, not yet committed.
    let dir = scratch_dir("part_rebuild_keep_same_day");
    let same_day = days_file(&dir, "same_day.ndjson", &[23, 21], 500);
    let keep = run_within(
        &mut db.logctl(&[
            "load",
            same_day.to_str().unwrap(),
            "--index-strategy",
            "keep",
        ]),
        120,
    );
    assert_success(&keep);
    assert_success(&loader.finish());
    assert_loaded_exactly(&db, &[&first, &more, &same_day]);
    assert_eq!(
        partition_names(&db),
        [
            "log_events_20261120",
            "log_events_20261121",
            "log_events_20261122",
            "log_events_20261123"
        ]
    );
}

#[test]
fn partition_bounds_are_read_right_whatever_the_sessions_date_style_and_zone() {
    let db = partitioned_db("part_datestyle", "day");
    // In this zone the SQL DateStyle writes times as "... IST", which reads back as
    // Israel's time, not India's.
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE {0} SET DateStyle = 'SQL, DMY'; \
             ALTER DATABASE {0} SET TimeZone = 'Asia/Kolkata'",
            db.name
        ))
        .unwrap();
    let dir = scratch_dir("part_datestyle");
    let first = days_file(&dir, "first.ndjson", &[20, 21], 300);
    assert_success(
        &db.logctl(&["load", first.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let more = days_file(&dir, "more.ndjson", &[22, 21], 300);
    assert_success(
        &db.logctl(&["load", more.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(
        partitions(&db),
        [
            ("log_events_20261120".to_string(), 300),
            ("log_events_20261121".to_string(), 600),
            ("log_events_20261122".to_string(), 300)
        ]
    );
    let listed = db.logctl_json(&[
        "prune",
        "--older-than",
        "2026-11-21T00:00:00Z",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(
        listed["partitions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    assert_eq!(listed["partitions"][0]["partition"], "log_events_20261120");
}

#[test]
fn new_partitions_get_the_users_own_indexes_too() {
    let (db, summary) = load_new_days_after(
        "part_user_indexes",
        "CREATE INDEX \"odd ON ONLY name\" ON log_events (level); \
         CREATE INDEX ON log_events (lower(message)) INCLUDE (status); \
         CREATE UNIQUE INDEX ON log_events (request_id, created_at, event_id); \
         CREATE INDEX ON log_events USING gin (metadata jsonb_path_ops)",
    );
    assert_eq!(summary["rebuilt_indexes"], true, "{summary}");
    // A partition created in place, by PostgreSQL itself, is the reference.
    db.client()
        .batch_execute("SELECT logctl_ensure_partition('2026-11-25')")
        .unwrap();
    let reference = partition_indexes(&db, "log_events_20261125");
    assert_eq!(reference.len(), 13, "{reference:?}");
    for day in ["log_events_20261120", "log_events_20261121"] {
        assert_eq!(partition_indexes(&db, day), reference, "{day}");
    }
}
