//! The progress bar as a person sees it, on a pseudo-terminal: from stdin it shows bytes
//! and a rate without a made-up total; a load into an empty table names its index
//! build while it runs and in the summary; on a narrow terminal the bar gives way to the
//! figures instead of collapsing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use expectrl::Expect;

/// Runs a shell command line on a pseudo-terminal of `width` columns, and returns all it
/// wrote, the progress bar's redraws included.
fn on_terminal(db: &TestDb, script: &str, width: u16) -> String {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .env("LOGCTL", env!("CARGO_BIN_EXE_logctl"))
        .env("DATABASE_URL", &db.url)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env_remove("NO_COLOR");
    let mut session = expectrl::session::Session::spawn(command).unwrap();
    session
        .get_process_mut()
        .set_window_size(width, 40)
        .unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(300)));
    let shown = session.expect(expectrl::Eof).unwrap();
    String::from_utf8_lossy(shown.as_bytes()).into_owned()
}

fn generated(name: &str, lines: u64) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    generated_file(&dir, "app.ndjson", lines, 9)
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn from_stdin_the_bar_shows_bytes_and_rate_without_a_total() {
    let db = TestDb::with_schema("progress_stdin");
    let file = generated("progress_stdin", 5000);
    // The pipe stays open a while after its lines, as a quiet writer's does.
    let shown = on_terminal(
        &db,
        &format!("(cat {}; sleep 1.5) | \"$LOGCTL\" load -", quoted(&file)),
        120,
    );
    assert!(shown.contains(" read, "), "{shown}");
    assert!(shown.contains("/s"), "a rate: {shown}");
    assert!(!shown.contains("/0 B") && !shown.contains("ETA"), "{shown}");
    assert!(shown.contains("loaded 5000 of 5000 lines"), "{shown}");
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 5000);
}

#[test]
fn a_load_into_an_empty_table_names_its_index_build_and_compaction_while_they_run_and_after() {
    let db = TestDb::with_schema("progress_rebuild");
    let file = generated("progress_rebuild", 100_000);
    let shown = on_terminal(&db, &format!("\"$LOGCTL\" load {}", quoted(&file)), 120);
    assert!(shown.contains("building indexes…"), "{shown}");
    assert!(shown.contains("compacting the rollups…"), "{shown}");
    assert!(shown.contains("ETA"), "a file's size is known: {shown}");
    let summary = shown
        .lines()
        .find(|line| line.contains("logctl: loaded"))
        .unwrap_or_else(|| panic!("no summary in {shown}"));
    assert!(summary.contains("of which building indexes"), "{summary}");
    assert!(summary.contains("compacting the ledger"), "{summary}");
    assert!(summary.contains("compacting the rollups"), "{summary}");
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 100_000);
}

#[test]
fn on_a_narrow_terminal_the_figures_stay_and_the_bar_goes() {
    let db = TestDb::with_schema("progress_narrow");
    let file = generated("progress_narrow", 100_000);
    let shown = on_terminal(&db, &format!("\"$LOGCTL\" load {}", quoted(&file)), 60);
    assert!(shown.contains("% of "), "{shown}");
    assert!(!shown.contains("[]") && !shown.contains("ETA"), "{shown}");
    // Each redraw of the bar fits the line.
    for redraw in shown.split(['\r', '\n']) {
        let text = console::strip_ansi_codes(redraw);
        assert!(
            unicode_width::UnicodeWidthStr::width(text.as_ref()) <= 60 || text.contains("logctl:"),
            "`{text}`"
        );
    }
}
