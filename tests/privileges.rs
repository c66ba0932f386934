//! Least privilege: roles created in the test cluster with exactly the GRANTs that
//! `logctl schema --print-grants` prints. A loader that does not own the tables loads
//! (keeping the indexes, which only the owner may drop), runs again and compacts the
//! ledger; a read-only role runs the reports and is told, before anything is read,
//! which privileges a load would need.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

static NEXT_ROLE: AtomicUsize = AtomicUsize::new(0);

/// A login role with what `--print-grants` (with these extra flags) prints for it.
fn role_with_printed_grants(db: &TestDb, prefix: &str, flags: &[&str]) -> String {
    let role = format!("{prefix}_{}", NEXT_ROLE.fetch_add(1, Ordering::SeqCst));
    let mut args = vec!["schema", "--print-grants", &role];
    args.extend_from_slice(flags);
    let printed = logctl_bare(&args).output().unwrap();
    assert_success(&printed);
    let mut owner = db.client();
    owner
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"
        ))
        .unwrap();
    owner.batch_execute(&stdout(&printed)).unwrap();
    role
}

fn logctl_as(db: &TestDb, role: &str, args: &[&str]) -> std::process::Output {
    logctl_bare(args)
        .env("DATABASE_URL", db.url_as(role))
        .output()
        .unwrap()
}

#[test]
fn a_loader_role_with_the_printed_grants_loads_runs_again_and_compacts() {
    let db = TestDb::with_schema("loader_role");
    let role = role_with_printed_grants(&db, "loader", &[]);
    let dir = scratch_dir("loader_role");
    let file = dir.join("app.ndjson");
    let first = generated_file(&dir, "first.ndjson", 3_000, 81);
    std::fs::copy(&first, &file).unwrap();
    let output = logctl_as(
        &db,
        &role,
        &[
            "load",
            file.to_str().unwrap(),
            "--batch-bytes",
            "32KiB",
            "--format",
            "json",
        ],
    );
    assert_success(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["rebuilt_indexes"], false,
        "only the owner may drop them"
    );
    assert_loaded_exactly(&db, &[&first]);
    // The file grows; the second run loads the new lines and compacts the ledger.
    let more = generated_file(&dir, "more.ndjson", 2_000, 82);
    let mut appended = std::fs::read(&file).unwrap();
    appended.extend(std::fs::read(&more).unwrap());
    std::fs::write(&file, appended).unwrap();
    let output = logctl_as(
        &db,
        &role,
        &["load", file.to_str().unwrap(), "--batch-bytes", "32KiB"],
    );
    assert_success(&output);
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    assert_loaded_exactly(&db, &[&file]);
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_ranges"),
        1,
        "compacted to one range"
    );
    assert_success(&logctl_as(&db, &role, &["status"]));
    // Asked to rebuild, it says why it cannot.
    let refused = logctl_as(
        &db,
        &role,
        &[
            "load",
            first.to_str().unwrap(),
            "--index-strategy",
            "rebuild",
        ],
    );
    assert_exit(&refused, 2);
    assert!(stderr(&refused).contains("owner"), "{}", stderr(&refused));
}

#[test]
fn a_loader_role_creates_the_partitions_it_needs() {
    let db = TestDb::empty("loader_partitions");
    assert_success(
        &db.logctl(&["schema", "--partition", "day"])
            .output()
            .unwrap(),
    );
    let role = role_with_printed_grants(&db, "loader", &[]);
    let dir = scratch_dir("loader_partitions");
    let file = generated_file(&dir, "days.ndjson", 3_000, 83);
    assert_success(&logctl_as(&db, &role, &["load", file.to_str().unwrap()]));
    assert_loaded_exactly(&db, &[&file]);
}

#[test]
fn a_read_only_role_runs_the_reports_and_cannot_load() {
    let db = TestDb::with_schema("reader_role");
    let dir = scratch_dir("reader_role");
    let file = generated_file(&dir, "app.ndjson", 1_000, 84);
    assert_success(
        &db.logctl(&["load", file.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let role = role_with_printed_grants(&db, "reader", &["--read-only"]);
    let slow = logctl_as(
        &db,
        &role,
        &["slow", "--threshold", "100", "--format", "json"],
    );
    assert_success(&slow);
    let status = logctl_as(&db, &role, &["status", "--format", "json"]);
    assert_success(&status);
    assert!(
        stdout(&status).contains("app.ndjson"),
        "{}",
        stdout(&status)
    );
    let load = logctl_as(&db, &role, &["load", file.to_str().unwrap()]);
    assert_exit(&load, 1);
    let err = stderr(&load);
    assert!(err.contains("INSERT on log_events"), "{err}");
    assert!(err.contains("--print-grants"), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM logctl_claims"), 0);
}
