//! A server restart in the middle of a load: the loader reports the lost connection
//! (exit 3; or, when no batch was in flight, carries on once the server is back), and
//! the next run completes with every line exactly once. In its own test binary because
//! it restarts the cluster.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_server_restart_mid_load_is_reported_and_a_re_run_completes_exactly_once() {
    let db = TestDb::with_schema("restart");
    let dir = scratch_dir("restart");
    let file = generated_file(&dir, "big.ndjson", 40_000, 71);
    let args = [
        "load",
        file.to_str().unwrap(),
        "--batch-bytes",
        "32KiB",
        "--index-strategy",
        "keep",
    ];
    let child = db
        .logctl(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count("SELECT count(*) FROM logctl_ranges") < 3 {
        assert!(Instant::now() < deadline, "no commits within a minute");
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster().stop().unwrap();
    cluster().start().unwrap();
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        // No batch was in flight when the server went away: the connections it cut
        // while they waited in the pool were replaced once it was back, and the load
        // went on. Nothing was lost, so nothing failed.
        assert_loaded_exactly(&db, &[&file]);
        return;
    }
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("connection"),
        "{}",
        stderr(&output)
    );
    let partial = db.count("SELECT count(*) FROM log_events");
    assert!(partial < 40_000);
    assert_success(&db.logctl(&args).output().unwrap());
    assert_eq!(
        db.count("SELECT count(DISTINCT event_id) FROM log_events"),
        40_000
    );
    assert_eq!(loaded_events(&db), expected_events(&file));
}
