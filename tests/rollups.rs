//! Rollups written with each batch: their counts against the raw rows, routes and their
//! cap, compaction run twice or held off, `rollup verify` catching a wrong cell and
//! `rollup rebuild` recomputing rollups for rows loaded before they existed.

mod common;

use common::*;

/// Every sum the rollups keep, per grain, against the same sums over the raw rows.
fn assert_sums_match(db: &TestDb) {
    assert_sums_times(db, 1);
}

/// Every sum the rollups keep, per grain, is `times` the same sum over the raw rows.
fn assert_sums_times(db: &TestDb, times: i64) {
    let raw = times * db.count("SELECT count(*) FROM log_events");
    let errors = times * db.count(
        "SELECT count(*) FROM log_events WHERE status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic')",
    );
    let latencies = times * db.count("SELECT count(latency_ms) FROM log_events");
    let latency_sum =
        times * db.count("SELECT coalesce(sum(latency_ms), 0)::bigint FROM log_events");
    for table in [
        "logctl_rollup_service_hour",
        "logctl_rollup_service_day",
        "logctl_rollup_route_hour",
        "logctl_rollup_route_day",
        "logctl_rollup_total_minute",
        "logctl_rollup_total_hour",
        "logctl_rollup_total_day",
    ] {
        assert_eq!(
            db.count(&format!(
                "SELECT coalesce(sum(events), 0)::bigint FROM {table}"
            )),
            raw,
            "{table} events"
        );
        assert_eq!(
            db.count(&format!(
                "SELECT coalesce(sum(errors), 0)::bigint FROM {table}"
            )),
            errors,
            "{table} errors"
        );
        assert_eq!(
            db.count(&format!(
                "SELECT coalesce(sum(latency_count), 0)::bigint FROM {table}"
            )),
            latencies,
            "{table} latencies"
        );
        assert_eq!(
            db.count(&format!(
                "SELECT coalesce(sum(latency_sum), 0)::bigint FROM {table}"
            )),
            latency_sum,
            "{table} latency sum"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_rollup_deltas"),
        0,
        "all folded"
    );
}

fn verify(db: &TestDb) -> std::process::Output {
    db.logctl(&[
        "rollup",
        "verify",
        "--since",
        "2026-01-01T00:00:00Z",
        "--until",
        "2027-01-01T00:00:00Z",
    ])
    .output()
    .unwrap()
}

/// Runs `logctl load ARGS...` while the rollup lock is held (as a rebuild holds it), so
/// that the load leaves its deltas pending.
fn load_leaving_deltas(db: &TestDb, args: &[&str]) {
    let mut holder = db.hold_rollup_lock();
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    assert_success(&db.logctl(&all).output().unwrap());
    holder.batch_execute("ROLLBACK").unwrap();
}

/// Waits until a session of `db` holds the rollup lock in `mode` (`ShareLock`,
/// `ExclusiveLock`); returns its process id.
fn wait_for_rollup_lock(db: &TestDb, mode: &str) -> i32 {
    let started = std::time::Instant::now();
    loop {
        let holders = db.query(&format!(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND mode = '{mode}' AND objid = x'726f6c6c'::bigint::oid \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ));
        if let Some(holder) = holders.first() {
            return holder.get(0);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no session took the rollup lock ({mode})"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn each_loads_rollups_count_exactly_its_rows_on_both_strategies() {
    let db = TestDb::with_schema("rollup_counts");
    let dir = scratch_dir("rollup_counts");
    let first = generated_file(&dir, "first.ndjson", 20_000, 1);
    let second = generated_file(&dir, "second.ndjson", 20_000, 2);
    // Into the empty table: one transaction; then beside its rows: batch by batch.
    for file in [&first, &second] {
        assert_success(
            &db.logctl(&["load", file.to_str().unwrap()])
                .output()
                .unwrap(),
        );
    }
    assert_sums_match(&db);
    assert_success(&verify(&db));
    // Routes: ids templated away, and every row with an endpoint has one.
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE (endpoint IS NULL) <> (route IS NULL)"),
        0
    );
    assert!(db.count("SELECT count(*) FROM log_events WHERE route = '/api/v1/orders/:id'") > 0);
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_rollup_route_hour WHERE route ~ '/[0-9]+(/|$)'"),
        0,
        "no id left in a route"
    );
    // Compacting again changes nothing.
    let before = db.count("SELECT sum(events)::bigint FROM logctl_rollup_route_hour");
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_eq!(
        db.count("SELECT sum(events)::bigint FROM logctl_rollup_route_hour"),
        before
    );
}

#[test]
fn deltas_left_pending_count_the_same_and_fold_later() {
    let db = TestDb::with_schema("rollup_pending");
    let dir = scratch_dir("rollup_pending");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 3);
    // A rebuild holds the rollup lock: the load leaves its deltas pending.
    let mut holder = db.hold_rollup_lock();
    let load = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&load);
    assert!(
        stderr(&load).contains("rollup compact"),
        "{}",
        stderr(&load)
    );
    assert!(db.count("SELECT count(*) FROM logctl_rollup_deltas") > 0);
    assert_eq!(db.count("SELECT count(*) FROM logctl_rollup_route_hour"), 0);
    assert_success(&verify(&db));
    holder.batch_execute("ROLLBACK").unwrap();
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_sums_match(&db);
    assert_success(&verify(&db));
}

/// More deltas than one compaction step reads (256), over several services, each with
/// more than a step's worth, folded by two `rollup compact` at once (each in two lanes,
/// on two connections): steps take turns in each lane and fold whole services, a
/// service over several steps, and every delta counts once. (The deltas are each
/// batch's 32 times over, as if every row had been loaded 32 times.)
#[test]
fn compaction_in_steps_folds_every_delta_once() {
    let db = TestDb::with_schema("rollup_steps");
    let dir = scratch_dir("rollup_steps");
    let file = generated_file(&dir, "logs.ndjson", 20_000, 4);
    load_leaving_deltas(&db, &["--batch-bytes", "256KiB", file.to_str().unwrap()]);
    db.client()
        .batch_execute(
            "INSERT INTO logctl_rollup_deltas (service_id, first_minute, last_minute, cells, spread) \
             SELECT service_id, first_minute, last_minute, cells, spread \
             FROM logctl_rollup_deltas, generate_series(1, 31)",
        )
        .unwrap();
    assert!(
        db.count(
            "SELECT min(deltas) FROM \
             (SELECT count(*) AS deltas FROM logctl_rollup_deltas GROUP BY service_id) AS s"
        ) > 3 * 256
    );
    let compactors: Vec<_> = (0..2)
        .map(|_| db.logctl(&["rollup", "compact"]).spawn().unwrap())
        .collect();
    for compactor in compactors {
        assert_success(&compactor.wait_with_output().unwrap());
    }
    assert_sums_times(&db, 32);
}

#[test]
fn verify_names_a_cell_that_differs_and_rebuild_mends_it() {
    let db = TestDb::with_schema("rollup_mend");
    let dir = scratch_dir("rollup_mend");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 4);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    db.client()
        .batch_execute(
            "UPDATE logctl_rollup_route_hour SET events = events + 1 \
             WHERE (hour, service_id, route) = \
                   (SELECT hour, service_id, route \
                    FROM logctl_rollup_route_hour ORDER BY events DESC LIMIT 1); \
             UPDATE logctl_rollup_total_minute_detail SET detail = '\\x0100' \
             WHERE (minute, service_id) = \
                   (SELECT minute, service_id \
                    FROM logctl_rollup_total_minute ORDER BY events DESC LIMIT 1)",
        )
        .unwrap();
    let broken = verify(&db);
    assert_exit(&broken, 1);
    assert!(
        stderr(&broken).contains("differ from the raw rows"),
        "{}",
        stderr(&broken)
    );
    // The route cell, and the minute cells its minute total's detail lost.
    for cell in ["route hour 2026-11-24", "logctl: minute 2026-11-24"] {
        assert!(stderr(&broken).contains(cell), "{}", stderr(&broken));
    }
    assert_success(
        &db.logctl(&[
            "rollup",
            "rebuild",
            "--since",
            "2026-11-20T00:00:00Z",
            "--until",
            "2026-11-30T00:00:00Z",
        ])
        .output()
        .unwrap(),
    );
    let mended = verify(&db);
    assert_success(&mended);
    assert!(
        stderr(&mended).contains("the rollups of 1 day match"),
        "{}",
        stderr(&mended)
    );
    assert_sums_match(&db);
}

/// The connection that holds the rollup lock for a rebuild is lost while the rebuild
/// runs: a compaction step could then read a cell before the rebuild commits and write
/// it back after, so the rebuild is undone instead of committed without the lock.
#[test]
fn a_rebuild_whose_lock_holder_is_lost_is_undone() {
    let db = TestDb::with_schema("rollup_rebuild_guard");
    let dir = scratch_dir("rollup_rebuild_guard");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 6);
    load_leaving_deltas(&db, &[file.to_str().unwrap()]);
    let deltas = db.count("SELECT count(*) FROM logctl_rollup_deltas");
    // The rebuild stops at the raw rows until the lock's holder is gone.
    let mut rows = db.client();
    rows.batch_execute("BEGIN; LOCK TABLE log_events IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let rebuild = spawn_logctl(
        &db,
        &["rollup", "rebuild", "--since", "2026-11-20T00:00:00Z"],
    );
    let guard = wait_for_rollup_lock(&db, "ExclusiveLock");
    assert!(
        db.query(&format!("SELECT pg_terminate_backend({guard})"))[0].get::<_, bool>(0),
        "the guard's session was ended"
    );
    rows.batch_execute("ROLLBACK").unwrap();
    let rebuild = rebuild.wait_with_output().unwrap();
    assert_exit(&rebuild, 1);
    assert!(
        stderr(&rebuild).contains("held the rollup lock for this rebuild was lost"),
        "{}",
        stderr(&rebuild)
    );
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_rollup_deltas"),
        deltas,
        "nothing of the rebuild was kept"
    );
    assert_success(&verify(&db));
}

/// A rebuild beside a compaction that goes on, step after step: its snapshot is taken
/// once it holds the rollup lock, so no step commits after it and it is not rolled back
/// for one. (A snapshot taken while it waited missed the deltas the step before deleted,
/// and every try of it was rolled back while the compaction went on.) The steps here
/// move one delta each, as a step deletes the deltas it folds.
#[test]
fn a_rebuild_beside_a_compaction_that_goes_on_is_not_rolled_back_for_it() {
    let db = TestDb::with_schema("rollup_rebuild_wait");
    let dir = scratch_dir("rollup_rebuild_wait");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 5);
    load_leaving_deltas(&db, &[file.to_str().unwrap()]);
    let rebuilt = std::sync::atomic::AtomicBool::new(false);
    let steps = std::thread::scope(|scope| {
        let compaction = scope.spawn(|| {
            let mut client = db.client();
            let mut steps = 0;
            let started = std::time::Instant::now();
            while !rebuilt.load(std::sync::atomic::Ordering::SeqCst)
                && started.elapsed() < std::time::Duration::from_secs(30)
            {
                client
                    .batch_execute(
                        "BEGIN; \
                         SELECT pg_advisory_xact_lock_shared(x'6c6f6763726f6c6c'::bigint); \
                         WITH moved AS (DELETE FROM logctl_rollup_deltas \
                             WHERE delta_id = (SELECT min(delta_id) FROM logctl_rollup_deltas) \
                             RETURNING service_id, first_minute, last_minute, cells, spread) \
                         INSERT INTO logctl_rollup_deltas \
                             (service_id, first_minute, last_minute, cells, spread) \
                         SELECT * FROM moved; \
                         SELECT pg_sleep(0.05); \
                         COMMIT",
                    )
                    .unwrap();
                steps += 1;
            }
            steps
        });
        // The rebuild starts while a step holds the lock, and waits for it.
        wait_for_rollup_lock(&db, "ShareLock");
        let rebuild = db
            .logctl(&[
                "rollup",
                "rebuild",
                "--since",
                "2026-11-20T00:00:00Z",
                "--until",
                "2026-11-30T00:00:00Z",
            ])
            .output()
            .unwrap();
        rebuilt.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_success(&rebuild);
        compaction.join().unwrap()
    });
    assert!(steps > 1, "the compaction went on: {steps} steps");
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_sums_match(&db);
    assert_success(&verify(&db));
}

#[test]
fn rebuild_computes_rollups_for_rows_loaded_before_they_existed() {
    let db = TestDb::with_schema("rollup_before");
    let dir = scratch_dir("rollup_before");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 5);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let routes_before = db.count("SELECT count(DISTINCT route) FROM logctl_rollup_route_hour");
    // What an older logctl left: rows without routes, no rollups.
    db.client()
        .batch_execute(
            "UPDATE log_events SET route = NULL; \
             TRUNCATE logctl_rollup_service_hour, logctl_rollup_service_day, \
                      logctl_rollup_route_hour, logctl_rollup_route_day, \
                      logctl_rollup_total_minute, logctl_rollup_total_hour, \
                      logctl_rollup_total_day, logctl_rollup_route_hour_detail, \
                      logctl_rollup_route_day_detail, logctl_rollup_total_minute_detail",
        )
        .unwrap();
    assert_exit(&verify(&db), 1);
    assert_success(
        &db.logctl(&["rollup", "rebuild", "--since", "2026-11-01T00:00:00Z"])
            .output()
            .unwrap(),
    );
    assert_success(&verify(&db));
    assert_sums_match(&db);
    assert_eq!(
        db.count("SELECT count(DISTINCT route) FROM logctl_rollup_route_hour"),
        routes_before,
        "the same routes, templated from the endpoints"
    );
}

/// The tables in which a logctl before migration 011 kept its fine hour and day cells
/// and its minute cells, one row each (006's and 007's columns).
const LEGACY_TABLES: &str = "
    CREATE TABLE logctl_rollup_minute (
        minute timestamptz NOT NULL, service_id integer NOT NULL, status_class smallint NOT NULL,
        level text NOT NULL, events bigint NOT NULL, errors bigint NOT NULL,
        latency_count bigint NOT NULL, latency_sum bigint NOT NULL, latency_min integer,
        latency_max integer, latency bytea NOT NULL,
        PRIMARY KEY (minute, service_id, status_class, level));
    CREATE TABLE logctl_rollup_hour (
        hour timestamptz NOT NULL, service_id integer NOT NULL, route text NOT NULL,
        method text NOT NULL, status smallint NOT NULL, level text NOT NULL,
        events bigint NOT NULL, errors bigint NOT NULL, latency_count bigint NOT NULL,
        latency_sum bigint NOT NULL, latency_min integer, latency_max integer,
        latency_p50 real, latency_p95 real, latency_p99 real, latency bytea NOT NULL,
        PRIMARY KEY (hour, service_id, route, method, status, level));
    CREATE TABLE logctl_rollup_day (LIKE logctl_rollup_hour);
    ALTER TABLE logctl_rollup_day RENAME COLUMN hour TO day;";

/// Writes the cells of the raw rows into the legacy tables, as an older logctl's
/// compaction left them.
fn write_legacy_cells(db: &TestDb) {
    use logctl::analytics::rollup::{Cells, DAY, Measures, Row, bucket_of};
    let mut client = db.client();
    client.batch_execute(LEGACY_TABLES).unwrap();
    let mut cells: Cells = Cells::default();
    let rows = client
        .query(
            "SELECT ((extract(epoch FROM created_at) - 946684800) * 1000000)::bigint, \
                    service_id, level, method, status, latency_ms, route FROM log_events",
            &[],
        )
        .unwrap();
    for row in &rows {
        cells.add(&Row {
            created_at: row.get(0),
            service_id: row.get(1),
            level: row.get(2),
            method: row.get(3),
            status: row.get(4),
            latency_ms: row.get(5),
            route: row.get(6),
        });
    }
    let sketch = |measures: &Measures| {
        let mut bytes = Vec::new();
        measures.latency.encode(&mut bytes);
        bytes
    };
    let at = "TIMESTAMPTZ '2000-01-01Z' + $1::bigint * interval '1 microsecond'";
    for (key, measures) in &cells.minutes {
        client
            .execute(
                &format!(
                    "INSERT INTO logctl_rollup_minute VALUES ({at}, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11)"
                ),
                &[
                    &key.minute,
                    &key.service_id,
                    &key.status_class,
                    &&*key.level,
                    &(measures.events as i64),
                    &(measures.errors as i64),
                    &(measures.latency.count() as i64),
                    &(measures.latency.sum() as i64),
                    &measures.latency.min(),
                    &measures.latency.max(),
                    &sketch(measures),
                ],
            )
            .unwrap();
    }
    let mut days = cells.hours.clone();
    days.clear();
    for (key, measures) in &cells.hours {
        let mut day = key.clone();
        day.start = bucket_of(key.start, DAY);
        days.entry(day).or_default().merge(measures);
    }
    for (table, cells) in [
        ("logctl_rollup_hour", &cells.hours),
        ("logctl_rollup_day", &days),
    ] {
        for (key, measures) in cells.iter() {
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} VALUES ({at}, $2, $3, $4, $5, $6, $7, $8, $9, \
                         $10, $11, $12, NULL, NULL, NULL, $13)"
                    ),
                    &[
                        &key.start,
                        &key.service_id,
                        &&*key.route,
                        &&*key.method,
                        &key.status,
                        &&*key.level,
                        &(measures.events as i64),
                        &(measures.errors as i64),
                        &(measures.latency.count() as i64),
                        &(measures.latency.sum() as i64),
                        &measures.latency.min(),
                        &measures.latency.max(),
                        &sketch(measures),
                    ],
                )
                .unwrap();
        }
    }
}

/// A database compacted by a logctl before migration 011: `logctl schema` packs its fine
/// and minute cells into the route cells and minute totals, derives every other grain
/// from them (what 007 and 010 derived included), and drops the tables they were rows of.
#[test]
fn schema_packs_the_cells_an_older_logctl_kept_as_rows_and_derives_every_grain() {
    let db = TestDb::with_schema("rollup_pack");
    let dir = scratch_dir("rollup_pack");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 6);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    write_legacy_cells(&db);
    // What the older grains held then: some of it (007's and 010's grains were derived
    // later than the fine cells, a compaction may have folded more in meanwhile), and
    // no detail.
    db.client()
        .batch_execute(
            "DELETE FROM logctl_rollup_service_hour; DELETE FROM logctl_rollup_service_day; \
             DELETE FROM logctl_rollup_route_hour WHERE events > 10; \
             DELETE FROM logctl_rollup_route_hour_detail; \
             DELETE FROM logctl_rollup_route_day; DELETE FROM logctl_rollup_route_day_detail; \
             DELETE FROM logctl_rollup_total_minute WHERE events > 3; \
             DELETE FROM logctl_rollup_total_minute_detail; \
             DELETE FROM logctl_rollup_total_hour; DELETE FROM logctl_rollup_total_day; \
             INSERT INTO logctl_settings (key, value) VALUES ('pack_rollup_details', 'pending')",
        )
        .unwrap();
    assert_exit(&verify(&db), 1);
    // Until `schema` has converted them, nothing writes the grains: the conversion
    // replaces whole days, and would undo it. A load leaves its deltas pending.
    let later = generated_file(&dir, "later.ndjson", 200, 7);
    assert_success(
        &db.logctl(&["load", later.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert!(db.count("SELECT count(*) FROM logctl_rollup_deltas") > 0);
    for command in [
        &["rollup", "compact"][..],
        &["rollup", "rebuild", "--since", "2026-11-01T00:00:00Z"],
    ] {
        let refused = db.logctl(command).output().unwrap();
        assert!(!refused.status.success(), "{command:?}");
        assert!(
            stderr(&refused).contains("run `logctl schema`"),
            "{}",
            stderr(&refused)
        );
    }
    let schema = db.logctl(&["schema"]).output().unwrap();
    assert_success(&schema);
    assert!(
        stderr(&schema).contains("packed the fine and minute rollup cells")
            && stderr(&schema).contains("for 1 day"),
        "{}",
        stderr(&schema)
    );
    assert_success(&verify(&db));
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_success(&verify(&db));
    assert_sums_match(&db);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM unnest(ARRAY['logctl_rollup_minute', 'logctl_rollup_hour', \
             'logctl_rollup_day']) AS t WHERE to_regclass(t) IS NOT NULL"
        ),
        0,
        "the tables of the rows are dropped"
    );
    let again = db.logctl(&["schema"]).output().unwrap();
    assert!(!stderr(&again).contains("packed"), "{}", stderr(&again));
}

#[test]
fn route_rules_apply_first_and_the_cap_sends_the_rest_to_other() {
    let db = TestDb::with_schema("rollup_routes");
    let dir = scratch_dir("rollup_routes");
    let path = dir.join("users.ndjson");
    let mut text = String::new();
    for (i, user) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
        text.push_str(&format!(
            "{{\"ts\":\"2026-11-24T10:00:0{i}Z\",\"service\":\"web\",\"msg\":\"x\",\"endpoint\":\"/users/{user}/avatar?size=64\",\"status\":200}}\n"
        ));
        text.push_str(&format!(
            "{{\"ts\":\"2026-11-24T10:00:1{i}Z\",\"service\":\"web\",\"msg\":\"x\",\"endpoint\":\"/pages/{user}\",\"status\":200}}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let load = db
        .logctl(&[
            "load",
            "--route-rule",
            "/users/:user/avatar",
            "--route-limit",
            "3",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&load);
    let routes: Vec<(String, i64)> = db
        .query("SELECT route, count(*) FROM log_events GROUP BY route ORDER BY route")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        routes,
        [
            ("(other)".to_string(), 3),
            ("/pages/alice".to_string(), 1),
            ("/pages/bob".to_string(), 1),
            ("/users/:user/avatar".to_string(), 5),
        ]
    );
    let bad = db
        .logctl(&["load", "--route-rule", "users/*", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&bad, 2);
    assert!(
        stderr(&bad).contains("route rule `users/*`"),
        "{}",
        stderr(&bad)
    );
}

/// A rebuild while `prune` deletes raw rows batch by batch leaves the pruned days alone:
/// prune records how far raw rows go before it deletes any, so that no rebuild
/// recomputes a day's rollups from the part of its rows that is left.
#[test]
fn a_rebuild_while_prune_deletes_leaves_the_days_it_prunes_alone() {
    let db = TestDb::with_schema("rollup_prune_race");
    let dir = scratch_dir("rollup_prune_race");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 7);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let events = db.count("SELECT sum(events)::bigint FROM logctl_rollup_route_hour");
    assert_eq!(events, 5_000);
    // The newest row, which prune reaches in its last batch, holds it up there.
    let mut newest = db.client();
    newest
        .batch_execute(
            "BEGIN; SELECT 1 FROM log_events \
             WHERE created_at = (SELECT max(created_at) FROM log_events) FOR UPDATE",
        )
        .unwrap();
    let prune = spawn_logctl(
        &db,
        &[
            "prune",
            "--older-than",
            "2026-11-25T00:00:00Z",
            "--batch-rows",
            "500",
        ],
    );
    let started = std::time::Instant::now();
    while db.count("SELECT count(*) FROM log_events") > 4_000 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "prune deleted no batch"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_success(
        &db.logctl(&["rollup", "rebuild", "--since", "2026-11-20T00:00:00Z"])
            .output()
            .unwrap(),
    );
    newest.batch_execute("ROLLBACK").unwrap();
    assert_success(&prune.wait_with_output().unwrap());
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
    assert_eq!(
        db.count("SELECT sum(events)::bigint FROM logctl_rollup_route_hour"),
        events,
        "the rollups outlive the pruned rows"
    );
}

#[test]
fn rollups_outlive_the_raw_rows_each_width_for_its_own_period() {
    let db = TestDb::with_schema("rollup_retention");
    let dir = scratch_dir("rollup_retention");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 6);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let events = db.count("SELECT count(*) FROM log_events");
    // The rows (of 2026-11-24) go; minute cells are kept a day, hours their 400 days.
    let pruned = db.logctl_json(&[
        "prune",
        "--older-than",
        "2026-11-25T00:00:00Z",
        "--keep-rollups",
        "minute=1d",
        "--format",
        "json",
    ]);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 0);
    let grains: Vec<(&str, i64)> = pruned["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["grain"].as_str().unwrap(), g["cells"].as_i64().unwrap()))
        .collect();
    assert_eq!(grains[1..], [("hour", 0), ("day", 0)]);
    assert!(grains[0].1 > 0, "minute cells removed: {grains:?}");
    // Every grain of the width goes, and only those.
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_rollup_total_minute"),
        0
    );
    for table in [
        "logctl_rollup_service_hour",
        "logctl_rollup_route_hour",
        "logctl_rollup_total_hour",
    ] {
        assert_eq!(
            db.count(&format!("SELECT sum(events)::bigint FROM {table}")),
            events,
            "{table}"
        );
    }
    // Checking or rebuilding from raw rows leaves the pruned days alone.
    assert_success(&verify(&db));
    assert_success(
        &db.logctl(&["rollup", "rebuild", "--since", "2026-11-01T00:00:00Z"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        db.count("SELECT sum(events)::bigint FROM logctl_rollup_route_day"),
        events
    );
    let bad = db
        .logctl(&["prune", "--older-than", "1d", "--keep-rollups", "week=1d"])
        .output()
        .unwrap();
    assert_exit(&bad, 2);
}

#[test]
fn a_finer_width_is_never_kept_longer_than_a_coarser_one() {
    let db = TestDb::with_schema("rollup_retention_order");
    let dir = scratch_dir("rollup_retention_order");
    // From 2026-11-24 00:00:00 on, 50 a second: the minutes 00:00 and 00:01.
    let first = generated_file(&dir, "first.ndjson", 5_000, 6);
    assert_success(
        &db.logctl(&["load", first.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let first_events = db.count("SELECT count(*) FROM log_events");
    db.query(
        "CREATE TABLE saved_minute AS SELECT * FROM logctl_rollup_total_minute \
         WHERE minute = '2026-11-24T00:00:00Z' ORDER BY service_id LIMIT 1",
    );
    db.query(
        "CREATE TABLE saved_minute_detail AS SELECT detail.* \
         FROM logctl_rollup_total_minute_detail detail JOIN saved_minute USING (minute, service_id)",
    );
    let orphan_events = db.count("SELECT sum(events)::bigint FROM saved_minute");
    // Minutes asked for longer than hours, and hours cut at 00:00:30: the hour 00:00
    // goes whole, and so do its minutes, the 00:01 after the cut too.
    let cut = chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:30Z").unwrap();
    let hours_kept = (chrono::Utc::now() - cut.to_utc()).num_seconds();
    let pruned = db.logctl_json(&[
        "prune",
        "--older-than",
        "2000-01-01T00:00:00Z",
        "--keep-rollups",
        "minute=30d",
        "--keep-rollups",
        &format!("hour={hours_kept}s"),
        "--format",
        "json",
    ]);
    let rollups = pruned["rollups"].as_array().unwrap();
    assert_eq!(rollups[0]["cutoff"], "2026-11-24T01:00:00Z", "{pruned}");
    for table in ["logctl_rollup_total_minute", "logctl_rollup_total_hour"] {
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // A minute cell under no hour total, as an older logctl's prune could leave one: the
    // next compaction adds to it.
    db.query("INSERT INTO logctl_rollup_total_minute SELECT * FROM saved_minute");
    db.query("INSERT INTO logctl_rollup_total_minute_detail SELECT * FROM saved_minute_detail");
    // Another load of that day: its hours are new, its days add to the kept ones.
    let second = generated_file(&dir, "second.ndjson", 2_000, 7);
    assert_success(
        &db.logctl(&["load", second.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let all_events = db.count("SELECT count(*) FROM log_events");
    assert_eq!(db.count("SELECT count(*) FROM logctl_rollup_deltas"), 0);
    for (table, events) in [
        (
            "logctl_rollup_total_minute",
            all_events - first_events + orphan_events,
        ),
        ("logctl_rollup_total_hour", all_events - first_events),
        ("logctl_rollup_service_hour", all_events - first_events),
        ("logctl_rollup_route_hour", all_events - first_events),
        ("logctl_rollup_total_day", all_events),
        ("logctl_rollup_service_day", all_events),
        ("logctl_rollup_route_day", all_events),
    ] {
        assert_eq!(
            db.count(&format!(
                "SELECT coalesce(sum(events), 0)::bigint FROM {table}"
            )),
            events,
            "{table}"
        );
    }
}
