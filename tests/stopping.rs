//! Stopping: SIGTERM or SIGINT ends a load within two seconds whatever its reader waits
//! on (a quiet stdin, a quiet FIFO), committing the complete lines already read and not
//! a partial last one.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A line of logctl's generic shape, told apart by `n`.
fn line(n: u32) -> String {
    format!(
        "{{\"ts\":\"2026-03-01T10:00:{n:02}Z\",\"service\":\"api\",\"level\":\"info\",\"message\":\"line {n}\"}}\n"
    )
}

/// Waits until the reading end has taken everything written to this pipe or FIFO.
fn wait_until_read(writer: &impl AsRawFd) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int, which `unread` is.
        assert_eq!(
            unsafe { libc::ioctl(writer.as_raw_fd(), libc::FIONREAD, &mut unread) },
            0
        );
        if unread == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "logctl never read its input");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to a load whose writer has gone quiet, and checks that it stops within
/// two seconds with 130, having committed exactly the complete line sent before.
fn stops_at_once(db: &TestDb, mut child: Child, writer: &mut (impl Write + AsRawFd), signal: i32) {
    writer.write_all(line(1).as_bytes()).unwrap();
    writer
        .write_all(b"{\"ts\":\"2026-03-01T10:00:02Z\",\"partial")
        .unwrap();
    writer.flush().unwrap();
    wait_until_read(writer);
    // The line is read; give the reader time to wait on the quiet input.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let deadline = sent + Duration::from_secs(2);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopped_in = sent.elapsed();
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        stopped_in < Duration::from_secs(2),
        "still running {stopped_in:?} after the signal; stderr: {}",
        stderr(&output)
    );
    assert_exit(&output, 130);
    let messages: Vec<String> = db
        .query("SELECT message FROM log_events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(messages, ["line 1"], "{}", stderr(&output));
}

#[test]
fn sigterm_stops_a_load_waiting_on_a_quiet_stdin_and_commits_its_complete_lines() {
    let db = TestDb::with_schema("quiet_stdin");
    let mut child = db
        .logctl(&["load", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stops_at_once(&db, child, &mut stdin, libc::SIGTERM);
}

#[test]
fn sigterm_stops_a_load_waiting_on_a_quiet_fifo_and_commits_its_complete_lines() {
    let db = TestDb::with_schema("quiet_fifo");
    let dir = scratch_dir("quiet_fifo");
    let fifo = dir.join("pipe");
    make_fifo(&fifo);
    let child = spawn_load(&db, &[fifo.to_str().unwrap(), "--index-strategy", "keep"]);
    // Opening the writing end waits for logctl to open the reading end.
    let mut writer = std::fs::File::options().write(true).open(&fifo).unwrap();
    stops_at_once(&db, child, &mut writer, libc::SIGTERM);
}

#[test]
fn sigint_stops_a_load_waiting_on_a_quiet_stdin_the_same_way() {
    let db = TestDb::with_schema("quiet_stdin_sigint");
    let mut child = db
        .logctl(&["load", "-", "--index-strategy", "keep"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stops_at_once(&db, child, &mut stdin, libc::SIGINT);
}
