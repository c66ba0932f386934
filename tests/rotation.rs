//! Files that change under a load, as logrotate changes them: `copytruncate` while the
//! loader holds the file open (paused mid-file), and a writer without O_APPEND, whose
//! every generation starts with a hole of NUL bytes. Every line of every generation
//! must be loaded exactly once, whatever the order of rotations and runs.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;

fn signal(child: &std::process::Child, signal: libc::c_int) {
    // SAFETY: sending a signal to a child process this test started and still owns.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// What logrotate's copytruncate does: copy the file aside, then empty it in place.
fn copytruncate(log: &Path, rotated: &Path) {
    std::fs::copy(log, rotated).unwrap();
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(log)
        .unwrap();
}

fn paths(list: &[&PathBuf]) -> Vec<String> {
    list.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn copytruncate_under_a_paused_load_loads_every_generation_once() {
    let db = TestDb::with_schema("rot_copytruncate");
    let dir = scratch_dir("rot_copytruncate");
    // Rows already there: the load keeps the indexes and commits batch by batch.
    let earlier = generated_file(&dir, "earlier.ndjson", 1_000, 9);
    assert_success(
        &db.logctl(&["load", earlier.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let old = generated_file(&dir, "old.ndjson", 150_000, 1);
    let new = generated_file(&dir, "new.ndjson", 150_000, 2);
    let log = dir.join("app.log");
    let rotated = dir.join("app.log.1");
    std::fs::copy(&old, &log).unwrap();

    let mut load = spawn_load(
        &db,
        &[
            "--batch-bytes",
            "256KiB",
            "--jobs",
            "2",
            log.to_str().unwrap(),
        ],
    );
    wait_until_copying(&db, &mut load, "log_events");
    signal(&load, libc::SIGSTOP);
    copytruncate(&log, &rotated);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&std::fs::read(&new).unwrap())
        .unwrap();
    signal(&load, libc::SIGCONT);
    let first = load.wait_with_output().unwrap();
    assert_success(&first);
    assert!(
        stderr(&first).contains("changed while it was loaded"),
        "the change is reported: {}",
        stderr(&first)
    );

    // The next run, as cron would start it over `app.log*`, finds the rest of the old
    // generation in the rotated copy.
    let inputs = paths(&[&log, &rotated]);
    let mut args = vec!["load"];
    args.extend(inputs.iter().map(String::as_str));
    assert_success(&db.logctl(&args).output().unwrap());
    assert_loaded_exactly(&db, &[&earlier, &old, &new]);
    // And once more: nothing is new.
    let again = db.logctl(&args).output().unwrap();
    assert_success(&again);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 301_000);
}

/// Lines of one length whatever their generation and number, so that a generation's
/// lines fall exactly where the previous one's were.
fn equal_length_lines(generation: u32, count: u32) -> String {
    (0..count)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-11-2{generation}T00:{:02}:{:02}.000Z\",\"service\":\"gen{generation}\",\"message\":\"line {i:06}\"}}\n",
                i / 60 % 60,
                i % 60
            )
        })
        .collect()
}

#[test]
fn every_generation_of_a_file_a_writer_without_o_append_leaves_holes_in_is_loaded_once() {
    let db = TestDb::with_schema("rot_holes");
    let dir = scratch_dir("rot_holes");
    let log = dir.join("app.log");
    let writer = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    // The writer's own position: copytruncate empties the file, not the writer's offset.
    let mut position = 0u64;
    let mut expected = Vec::new();
    for generation in 1..=3 {
        let lines = equal_length_lines(generation, 2_000);
        writer.write_all_at(lines.as_bytes(), position).unwrap();
        position += lines.len() as u64;
        let copy = dir.join(format!("gen{generation}.expected"));
        std::fs::write(&copy, &lines).unwrap();
        expected.push(copy);

        let mut inputs = vec![log.clone()];
        inputs.extend((1..generation).map(|g| dir.join(format!("app.log.{g}"))));
        let inputs = paths(&inputs.iter().collect::<Vec<_>>());
        let mut args = vec!["load"];
        args.extend(inputs.iter().map(String::as_str));
        let run = db.logctl(&args).output().unwrap();
        assert_success(&run);
        let expected: Vec<&Path> = expected.iter().map(PathBuf::as_path).collect();
        assert_loaded_exactly(&db, &expected);

        copytruncate(&log, &dir.join(format!("app.log.{generation}")));
    }
    // A last run over everything finds nothing new.
    let inputs: Vec<String> = std::iter::once(log.display().to_string())
        .chain((1..=3).map(|g| dir.join(format!("app.log.{g}")).display().to_string()))
        .collect();
    let mut args = vec!["load"];
    args.extend(inputs.iter().map(String::as_str));
    assert_success(&db.logctl(&args).output().unwrap());
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 6_000);
}
