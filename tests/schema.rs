//! `logctl schema`: creates the tables and indexes once, records its version,
//! changes nothing when run again, and prints its SQL with --print.

mod common;

use common::*;

fn catalog(db: &TestDb) -> Vec<String> {
    db.query(
        "SELECT c.relname::text || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' ORDER BY 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn schema_creates_the_tables_indexes_and_version_once() {
    let db = TestDb::empty("schema");
    let first = db.logctl(&["schema"]).output().unwrap();
    assert_success(&first);
    assert!(
        stderr(&first).contains("applied 001_events.sql, 002_ledger.sql"),
        "{}",
        stderr(&first)
    );
    let tables = catalog(&db);
    for expected in [
        "services:r",
        "log_events:r",
        "log_events_pkey:i",
        "log_events_latency_ms_idx:i",
        "log_events_errors_idx:i",
        "log_events_long_errors_idx:i",
        "log_events_created_at_brin:i",
        "logctl_schema_version:r",
        "logctl_sources:r",
        "logctl_ranges:r",
        "logctl_settings:r",
        "logctl_rollup_deltas:r",
        "logctl_rollup_route_hour:r",
        "logctl_rollup_route_hour_detail:r",
        "logctl_rollup_total_minute_detail:r",
    ] {
        assert!(
            tables.contains(&expected.to_string()),
            "{expected} missing from {tables:?}"
        );
    }
    let columns: Vec<(String, String)> = db
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'log_events' ORDER BY ordinal_position",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let types: Vec<(&str, &str)> = columns
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("event_id", "uuid"),
            ("service_id", "integer"),
            ("created_at", "timestamp with time zone"),
            ("level", "text"),
            ("message", "text"),
            ("endpoint", "text"),
            ("method", "text"),
            ("status", "smallint"),
            ("latency_ms", "integer"),
            ("request_id", "uuid"),
            ("metadata", "jsonb"),
            ("route", "text"),
        ]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_schema_version"),
        logctl::db::migrate::MIGRATIONS.len() as i64
    );
    // The deltas are compressed with lz4 on a server built with it, else as by default.
    let deltas_compression = db.query(
        "SELECT attcompression::text, \
         (SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression') \
         FROM pg_attribute WHERE attrelid = 'logctl_rollup_deltas'::regclass AND attname = 'cells'",
    );
    let lz4: bool = deltas_compression[0].get(1);
    assert_eq!(
        deltas_compression[0].get::<_, String>(0),
        if lz4 { "l" } else { "" }
    );

    let second = db.logctl(&["schema"]).output().unwrap();
    assert_success(&second);
    assert!(
        stderr(&second).contains("up to date"),
        "{}",
        stderr(&second)
    );
    assert_eq!(catalog(&db), tables);
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_schema_version"),
        logctl::db::migrate::MIGRATIONS.len() as i64
    );
}

#[test]
fn schema_print_shows_the_sql_without_connecting() {
    let output = logctl_bare(&[
        "schema",
        "--print",
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
    ])
    .output()
    .unwrap();
    assert_success(&output);
    let sql = stdout(&output);
    assert!(sql.contains("CREATE TABLE log_events"));
    assert!(sql.contains("CREATE INDEX log_events_latency_ms_idx"));
    assert!(sql.contains("logctl_schema_version"));
}

#[test]
fn the_sql_printed_builds_the_same_schema_as_running_it() {
    let printed = TestDb::empty("printed");
    let sql = stdout(&logctl_bare(&["schema", "--print"]).output().unwrap());
    printed.client().batch_execute(&sql).unwrap();
    let applied = TestDb::with_schema("applied");
    assert_eq!(catalog(&printed), catalog(&applied));
    let after = printed.logctl(&["schema"]).output().unwrap();
    assert!(stderr(&after).contains("up to date"), "{}", stderr(&after));
}

#[test]
fn a_database_from_an_older_logctl_is_upgraded_and_then_loads() {
    let db = TestDb::empty("upgrade");
    assert_success(
        &db.logctl(&["schema", "--partition", "day"])
            .output()
            .unwrap(),
    );
    // What a database made before migration 004 lacks.
    db.client()
        .batch_execute(
            "DROP FUNCTION logctl_partition_bounds(timestamptz); \
             DELETE FROM logctl_schema_version WHERE version = 4",
        )
        .unwrap();
    let upgrade = db.logctl(&["schema"]).output().unwrap();
    assert_success(&upgrade);
    assert!(
        stderr(&upgrade).contains("applied 004_partition_bounds.sql"),
        "{}",
        stderr(&upgrade)
    );
    let dir = scratch_dir("upgrade");
    let file = generated_file(&dir, "app.ndjson", 2000, 7);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn print_shows_the_sql_of_each_variant() {
    let print = |args: &[&str]| {
        let mut all = vec!["schema", "--print"];
        all.extend_from_slice(args);
        let output = logctl_bare(&all).output().unwrap();
        assert_success(&output);
        stdout(&output)
    };
    let plain = print(&[]);
    assert!(plain.contains("PRIMARY KEY (event_id)\n);"), "{plain}");
    let partitioned = print(&["--partition", "month"]);
    assert!(partitioned.contains("PARTITION BY RANGE (created_at)"));
    assert!(partitioned.contains("PRIMARY KEY (event_id, created_at)"));
    assert!(partitioned.contains("('partition', 'month')"));
    let distributed = print(&["--distributed"]);
    assert!(distributed.contains("SELECT create_reference_table('services');"));
    assert!(distributed.contains("SELECT create_distributed_table('log_events', 'service_id');"));
    assert!(distributed.contains("PRIMARY KEY (event_id, service_id)"));
    let both = print(&["--distributed", "--partition", "day"]);
    assert!(
        both.contains("PRIMARY KEY (event_id, service_id, created_at)")
            && both.contains("PARTITION BY RANGE")
    );
}

#[test]
fn distributed_without_citus_says_what_is_missing() {
    let db = TestDb::empty("nocitus");
    let output = db.logctl(&["schema", "--distributed"]).output().unwrap();
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains("Citus extension") && err.contains("CREATE EXTENSION citus"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'log_events'"),
        0,
        "nothing created"
    );
}

#[test]
fn a_database_created_by_an_older_logctl_is_upgraded_by_schema_and_then_loads() {
    let db = TestDb::empty("upgrade_claims");
    let sql = stdout(&logctl_bare(&["schema", "--print"]).output().unwrap());
    let older = &sql[..sql.find("-- 005_claims_and_roles.sql").unwrap()];
    db.client().batch_execute(older).unwrap();
    let dir = scratch_dir("upgrade_claims");
    let file = generated_file(&dir, "a.ndjson", 200, 5);
    let refused = db
        .logctl(&["load", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("logctl schema"),
        "{}",
        stderr(&refused)
    );
    let upgraded = db.logctl(&["schema"]).output().unwrap();
    assert_success(&upgraded);
    assert!(
        stderr(&upgraded).contains("applied 005_claims_and_roles.sql"),
        "{}",
        stderr(&upgraded)
    );
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_loaded_exactly(&db, &[&file]);
}
