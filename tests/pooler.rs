//! Loads through a real pgbouncer in transaction pooling mode (Debian's package, started
//! by the harness): every transaction may go to another server connection, so logctl
//! must keep no session state. Every line lands exactly once, and no advisory lock is
//! left on the server's connections after logctl exits.

mod common;

use common::*;

/// Advisory locks held on the server in this test's database (the other tests of this
/// binary load into theirs meanwhile): pgbouncer keeps its server connections open after
/// its clients leave, so a session lock would stay.
fn advisory_locks(db: &TestDb) -> i64 {
    db.count(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

fn load_through_pgbouncer(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    logctl_bare(&all)
        .env("DATABASE_URL", db.url_through_pgbouncer())
        .output()
        .unwrap()
}

#[test]
fn a_load_through_pgbouncer_in_transaction_mode_loads_every_line_once() {
    let db = TestDb::with_schema("pooled");
    let dir = scratch_dir("pooled");
    // Into the empty table (one long transaction), then beside its rows (a
    // transaction per batch, --jobs streams).
    let first = generated_file(&dir, "first.ndjson", 80_000, 61);
    let second = generated_file(&dir, "second.ndjson", 20_000, 62);
    for file in [&first, &second] {
        let output =
            load_through_pgbouncer(&db, &[file.to_str().unwrap(), "--batch-bytes", "256KiB"]);
        assert_success(&output);
        assert_eq!(
            advisory_locks(&db),
            0,
            "no advisory lock after logctl exits"
        );
    }
    assert_loaded_exactly(&db, &[&first, &second]);
    assert_eq!(db.count("SELECT count(*) FROM logctl_ranges"), 2);
    // Again: nothing new, nothing twice.
    assert_success(&load_through_pgbouncer(&db, &[first.to_str().unwrap()]));
    assert_loaded_exactly(&db, &[&first, &second]);
    let status = logctl_bare(&["status", "--format", "json"])
        .env("DATABASE_URL", db.url_through_pgbouncer())
        .output()
        .unwrap();
    assert_success(&status);
}

#[test]
fn two_loaders_racing_through_pgbouncer_load_each_line_once() {
    let db = TestDb::with_schema("pooled_race");
    let dir = scratch_dir("pooled_race");
    let files = [
        generated_file(&dir, "a.ndjson", 30_000, 63),
        generated_file(&dir, "b.ndjson", 30_000, 64),
    ];
    let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    let url = db.url_through_pgbouncer();
    let spawn = |args: &[&str]| {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        logctl_bare(&all)
            .env("DATABASE_URL", &url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let loaders = [
        spawn(&[a, b, "--batch-bytes", "64KiB"]),
        spawn(&[b, a, "--batch-bytes", "64KiB"]),
    ];
    for loader in loaders {
        assert_success(&loader.wait_with_output().unwrap());
    }
    assert_loaded_exactly(&db, &[&files[0], &files[1]]);
    assert_eq!(
        advisory_locks(&db),
        0,
        "no advisory lock after logctl exits"
    );
    assert_eq!(db.count("SELECT count(*) FROM logctl_claims"), 0);
}

#[test]
fn a_partitioned_table_loads_through_pgbouncer() {
    let db = TestDb::empty("pooled_partitions");
    assert_success(
        &db.logctl(&["schema", "--partition", "day"])
            .output()
            .unwrap(),
    );
    let dir = scratch_dir("pooled_partitions");
    let file = generated_file(&dir, "days.ndjson", 30_000, 65);
    assert_success(&load_through_pgbouncer(
        &db,
        &[file.to_str().unwrap(), "--batch-bytes", "64KiB"],
    ));
    assert_loaded_exactly(&db, &[&file]);
    assert_eq!(advisory_locks(&db), 0);
}
