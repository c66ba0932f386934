//! Rollups written with each batch: their counts against the raw rows, routes and their
//! cap, compaction run twice or held off, `rollup verify` catching a wrong cell and
//! `rollup rebuild` recomputing rollups for rows loaded before they existed.

mod common;

use common::*;

/// Every sum the rollups keep, per grain, against the same sums over the raw rows.
fn assert_sums_match(db: &TestDb) {
    let raw = db.count("SELECT count(*) FROM log_events");
    let errors = db.count(
        "SELECT count(*) FROM log_events WHERE status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic')",
    );
    let latencies = db.count("SELECT count(latency_ms) FROM log_events");
    let latency_sum = db.count("SELECT coalesce(sum(latency_ms), 0)::bigint FROM log_events");
    for table in [
        "logctl_rollup_minute",
        "logctl_rollup_hour",
        "logctl_rollup_day",
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
        db.count("SELECT count(*) FROM logctl_rollup_hour WHERE route ~ '/[0-9]+(/|$)'"),
        0,
        "no id left in a route"
    );
    // Compacting again changes nothing.
    let before = db.count("SELECT sum(events)::bigint FROM logctl_rollup_hour");
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_eq!(
        db.count("SELECT sum(events)::bigint FROM logctl_rollup_hour"),
        before
    );
}

#[test]
fn deltas_left_pending_count_the_same_and_fold_later() {
    let db = TestDb::with_schema("rollup_pending");
    let dir = scratch_dir("rollup_pending");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 3);
    // Another compactor holds the rollup lock: the load leaves its deltas pending.
    let mut holder = db.client();
    let mut holding = holder.transaction().unwrap();
    holding
        .execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&0x6c6f_6763_726f_6c6ci64],
        )
        .unwrap();
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
    assert_eq!(db.count("SELECT count(*) FROM logctl_rollup_hour"), 0);
    assert_success(&verify(&db));
    holding.rollback().unwrap();
    assert_success(&db.logctl(&["rollup", "compact"]).output().unwrap());
    assert_sums_match(&db);
    assert_success(&verify(&db));
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
            "UPDATE logctl_rollup_hour SET events = events + 1 \
             WHERE (hour, service_id, route, method, status, level) = \
                   (SELECT hour, service_id, route, method, status, level \
                    FROM logctl_rollup_hour ORDER BY events DESC LIMIT 1)",
        )
        .unwrap();
    let broken = verify(&db);
    assert_exit(&broken, 1);
    assert!(
        stderr(&broken).contains("differ from the raw rows"),
        "{}",
        stderr(&broken)
    );
    assert!(
        stderr(&broken).contains("hour 2026-11-24"),
        "{}",
        stderr(&broken)
    );
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
    assert_success(&verify(&db));
    assert_sums_match(&db);
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
    let routes_before = db.count("SELECT count(DISTINCT route) FROM logctl_rollup_hour");
    // What an older logctl left: rows without routes, no rollups.
    db.client()
        .batch_execute(
            "UPDATE log_events SET route = NULL; \
             TRUNCATE logctl_rollup_minute, logctl_rollup_hour, logctl_rollup_day",
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
        db.count("SELECT count(DISTINCT route) FROM logctl_rollup_hour"),
        routes_before,
        "the same routes, templated from the endpoints"
    );
}

#[test]
fn schema_derives_the_coarser_grains_of_cells_compacted_before_they_existed() {
    let db = TestDb::with_schema("rollup_derive");
    let dir = scratch_dir("rollup_derive");
    let file = generated_file(&dir, "logs.ndjson", 5_000, 6);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    // What migrations 007 and 010 find in a database compacted by an older logctl: hour
    // and day cells only, and a route cell and a minute total the next compaction
    // already folded in.
    db.client()
        .batch_execute(
            "DELETE FROM logctl_rollup_service_hour; DELETE FROM logctl_rollup_service_day; \
             DELETE FROM logctl_rollup_route_hour WHERE events > 10; \
             DELETE FROM logctl_rollup_route_day; \
             DELETE FROM logctl_rollup_total_minute WHERE events > 3; \
             DELETE FROM logctl_rollup_total_hour; DELETE FROM logctl_rollup_total_day; \
             INSERT INTO logctl_settings (key, value) VALUES \
                 ('derive_rollup_grains', 'pending'), ('derive_rollup_totals', 'pending')",
        )
        .unwrap();
    assert_exit(&verify(&db), 1);
    let schema = db.logctl(&["schema"]).output().unwrap();
    assert_success(&schema);
    for derived in [
        "derived the service and route rollups from the hour and day rollups, for 1 day",
        "derived the services' totals from the minute and service rollups, for 1 day",
    ] {
        assert!(stderr(&schema).contains(derived), "{}", stderr(&schema));
    }
    assert_success(&verify(&db));
    assert_sums_match(&db);
    let again = db.logctl(&["schema"]).output().unwrap();
    assert!(!stderr(&again).contains("derived"), "{}", stderr(&again));
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
    for table in ["logctl_rollup_minute", "logctl_rollup_total_minute"] {
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    for table in [
        "logctl_rollup_hour",
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
        db.count("SELECT sum(events)::bigint FROM logctl_rollup_day"),
        events
    );
    let bad = db
        .logctl(&["prune", "--older-than", "1d", "--keep-rollups", "week=1d"])
        .output()
        .unwrap();
    assert_exit(&bad, 2);
}
