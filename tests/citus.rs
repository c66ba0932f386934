//! The distributed variant on a real Citus cluster: run when LOGCTL_TEST_CITUS_URL
//! points at a scratch database on a coordinator with workers (the test drops and
//! recreates logctl's tables there); otherwise skipped with a message on stderr.
//! The generated SQL of the variant is tested always (tests/schema.rs).

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
    db.client()
        .batch_execute(
            "DROP TABLE IF EXISTS log_events, services, logctl_ranges, logctl_sources, logctl_settings, \
             logctl_schema_version CASCADE; \
             DROP FUNCTION IF EXISTS logctl_commit_range, logctl_compact_ranges, logctl_ensure_partition, \
             logctl_partition_bounds",
        )
        .unwrap();
    Some(db)
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
    assert_eq!(
        distribution,
        [
            ("log_events".into(), "h".into(), Some("service_id".into())),
            ("services".into(), "n".into(), None)
        ]
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
}
