//! The distributed variant on a real Citus cluster: run when LOGCTL_TEST_CITUS_URL
//! points at a scratch database on a coordinator with two workers (the test drops and
//! recreates logctl's tables there; scripts/citus-cluster.sh starts such a cluster);
//! otherwise skipped with a message on stderr. The generated SQL of the variant is
//! tested always (tests/schema.rs).

mod common;

use std::io::Write;

use common::*;

fn citus() -> Option<TestDb> {
    let Some(url) = std::env::var("LOGCTL_TEST_CITUS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        // Written to the terminal directly, past the test harness's output capture.
        let _ = std::io::stderr().write_all(
            b"\nSKIPPED: Citus tests (set LOGCTL_TEST_CITUS_URL to a scratch database on a Citus coordinator)\n",
        );
        return None;
    };
    let db = TestDb {
        name: "citus".into(),
        url,
    };
    db.client().batch_execute(DROP_LOGCTL).unwrap();
    Some(db)
}

/// Every table and function of logctl's, whatever version made them.
const DROP_LOGCTL: &str = "DO $$ DECLARE r record; BEGIN \
    FOR r IN SELECT oid::regclass AS t FROM pg_class WHERE relnamespace = 'public'::regnamespace \
        AND relkind IN ('r', 'p') AND NOT relispartition \
        AND (relname LIKE 'logctl%' OR relname IN ('log_events', 'services')) LOOP \
        EXECUTE format('DROP TABLE IF EXISTS %s CASCADE', r.t); END LOOP; \
    FOR r IN SELECT oid::regprocedure AS f FROM pg_proc WHERE pronamespace = 'public'::regnamespace \
        AND proname LIKE 'logctl%' LOOP \
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f); END LOOP; \
    END $$";

/// Each worker's share of log_events' rows (percent), in the order of their ports.
fn shares_of_workers(db: &TestDb) -> Vec<f64> {
    db.query(
        "SELECT 100 * sum(r.result::bigint)::float8 / sum(sum(r.result::bigint)) OVER () \
         FROM run_command_on_shards('log_events', 'SELECT count(*) FROM %s') r \
         JOIN citus_shards c USING (shardid) GROUP BY c.nodeport ORDER BY c.nodeport",
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The rows are spread over both workers within 10% of even, whatever their services.
fn assert_spread_evenly(db: &TestDb) {
    let shares = shares_of_workers(db);
    assert_eq!(shares.len(), 2, "{shares:?}");
    assert!(
        shares.iter().all(|share| (45.0..=55.0).contains(share)),
        "{shares:?}"
    );
}

/// One test, run in order: the scratch database is shared.
#[test]
fn the_distributed_variant_loads_reports_and_prunes_on_citus() {
    let Some(db) = citus() else { return };

    // Plain distributed table.
    let output = db.logctl(&["schema", "--distributed"]).output().unwrap();
    assert_success(&output);
    assert!(
        stderr(&output).contains("Citus distributed table"),
        "{}",
        stderr(&output)
    );
    let distribution: Vec<(String, String, Option<String>)> = db
        .query(
            "SELECT logicalrelid::text, partmethod::text, \
             column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition ORDER BY 1",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let by = |table: &str, method: &str, column: Option<&str>| {
        (
            table.to_string(),
            method.to_string(),
            column.map(String::from),
        )
    };
    assert_eq!(
        distribution,
        [
            by("log_events", "h", Some("spread")),
            by("logctl_rollup_deltas", "h", Some("spread")),
            by("logctl_rollup_route_day", "h", Some("service_id")),
            by("logctl_rollup_route_day_detail", "h", Some("service_id")),
            by("logctl_rollup_route_hour", "h", Some("service_id")),
            by("logctl_rollup_route_hour_detail", "h", Some("service_id")),
            by("logctl_rollup_service_day", "h", Some("service_id")),
            by("logctl_rollup_service_hour", "h", Some("service_id")),
            by("logctl_rollup_total_day", "h", Some("service_id")),
            by("logctl_rollup_total_hour", "h", Some("service_id")),
            by("logctl_rollup_total_minute", "h", Some("service_id")),
            by("logctl_rollup_total_minute_detail", "h", Some("service_id")),
            by("services", "n", None),
        ]
    );
    // A batch's rollup deltas go to the shard of its rows.
    assert_eq!(
        db.count(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition \
             WHERE logicalrelid IN ('log_events'::regclass, 'logctl_rollup_deltas'::regclass)"
        ),
        1
    );
    let dir = scratch_dir("citus");
    let file = generated_file(&dir, "app.ndjson", 4000, 81);
    // Two loaders racing on the same file, then a re-run: every line once.
    let run = vec![file.to_str().unwrap(), "--batch-bytes", "64KiB"];
    load_at_once(&db, &[run.clone(), run]);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(loaded_events(&db), expected_events(&file));
    assert_rollups_match(&db);
    // A few services, many batches: the batches go to the shards in turn, each to one.
    assert_spread_evenly(&db);
    assert_eq!(
        db.count("SELECT count(DISTINCT spread) FROM log_events"),
        db.count(
            "SELECT count(DISTINCT get_shard_id_for_distribution_column('log_events', spread)) \
             FROM log_events"
        )
    );
    // The report equals plain SQL over the distributed table.
    let json = db.logctl_json(&[
        "slow",
        "--threshold",
        "2000",
        "--limit",
        "10",
        "--format",
        "json",
    ]);
    let reported: Vec<i64> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["latency_ms"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = db
        .query("SELECT latency_ms::bigint FROM log_events WHERE latency_ms > 2000 ORDER BY latency_ms DESC LIMIT 10")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(reported, expected);
    let per_service = json["services"].as_array().unwrap();
    let slow_total: i64 = per_service
        .iter()
        .map(|s| s["slow_requests"].as_i64().unwrap())
        .sum();
    assert_eq!(
        slow_total,
        db.count("SELECT count(*) FROM log_events WHERE latency_ms > 2000")
    );
    let output = db
        .logctl(&["prune", "--older-than", "2026-11-24T00:01:00Z"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        db.count("SELECT count(*) FROM log_events WHERE created_at < '2026-11-24T00:01:00Z'"),
        0
    );
    assert!(db.count("SELECT count(*) FROM log_events") > 0);

    // Distributed and partitioned by day.
    let Some(db) = citus() else { return };
    assert_success(
        &db.logctl(&["schema", "--distributed", "--partition", "day"])
            .output()
            .unwrap(),
    );
    let days = generated_file(&dir, "day.ndjson", 2000, 82);
    let shifted = std::fs::read_to_string(&days)
        .unwrap()
        .replace("2026-11-24T", "2026-11-20T");
    std::fs::write(dir.join("before.ndjson"), shifted).unwrap();
    let output = db
        .logctl(&[
            "load",
            days.to_str().unwrap(),
            dir.join("before.ndjson").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 4000);
    assert_eq!(db.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'log_events_2026%'"), 2);
    assert_success(
        &db.logctl(&["prune", "--older-than", "2026-11-22T00:00:00Z"])
            .output()
            .unwrap(),
    );
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 2000);
    assert_eq!(loaded_events(&db), expected_events(&days));
    assert_rollups_match(&db);

    // A database that an older logctl distributed by service_id (the schema up to 006,
    // as it printed it) upgrades: its rows are spread, and loads go on.
    let Some(db) = citus() else { return };
    let output = db
        .logctl(&["schema", "--print", "--distributed"])
        .output()
        .unwrap();
    assert_success(&output);
    let script = stdout(&output);
    // (Cut before 007: psql sends a script one statement at a time, batch_execute all at
    // once, which Citus refuses for 007's and 008's ALTER TABLE and CREATE INDEX.)
    let before_spread = &script[..script.find("\n-- 007_rollup_grains.sql").unwrap()];
    db.client().batch_execute(before_spread).unwrap();
    db.client()
        .batch_execute(
            "INSERT INTO services (service_name) SELECT 'service-' || s FROM generate_series(1, 3) s; \
             INSERT INTO log_events (event_id, service_id, created_at, latency_ms) \
             SELECT gen_random_uuid(), 1 + i % 3, '2026-11-23T00:00:00Z'::timestamptz + i * interval '1 s', i \
             FROM generate_series(1, 3000) i",
        )
        .unwrap();
    let output = db.logctl(&["schema"]).output().unwrap();
    assert_success(&output);
    assert!(
        stderr(&output).contains("009_spread.sql"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'log_events'::regclass \
             AND column_to_column_name(logicalrelid, partkey) = 'spread'"
        ),
        1
    );
    assert_eq!(
        db.query(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'log_events_pkey'"
        )[0]
        .get::<_, String>(0),
        "PRIMARY KEY (event_id, spread)"
    );
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3000);
    assert_spread_evenly(&db);
    let file = generated_file(&dir, "after.ndjson", 2000, 83);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 5000);
    assert_success(
        &db.logctl(&[
            "rollup",
            "rebuild",
            "--since",
            "2026-11-23",
            "--until",
            "2026-11-25",
        ])
        .output()
        .unwrap(),
    );
    assert_rollups_match(&db);
}
