//! Inputs: gzip and zstd detected by content, globs, directories, stdin under a
//! source name, and a truncated compressed file.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::*;

fn gzip(from: &Path, to: &Path) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&std::fs::read(from).unwrap()).unwrap();
    encoder.finish().unwrap();
}

fn zstd(from: &Path, to: &Path) {
    std::fs::write(
        to,
        zstd::encode_all(&std::fs::read(from).unwrap()[..], 3).unwrap(),
    )
    .unwrap();
}

#[test]
fn compressed_files_are_detected_by_content_whatever_their_names() {
    let db = TestDb::with_schema("compressed");
    let dir = scratch_dir("compressed");
    let a = generated_file(&dir, "a.plain", 700, 31);
    let b = generated_file(&dir, "b.plain", 600, 32);
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    gzip(&a, &logs.join("a.log"));
    zstd(&b, &logs.join("b.log"));
    let summary = db.logctl_json(&[
        "load",
        "--format",
        "json",
        logs.join("a.log").to_str().unwrap(),
        logs.join("b.log").to_str().unwrap(),
    ]);
    assert_eq!(summary["loaded"], 1300);
    assert_loaded_exactly(&db, &[&a, &b]);
}

#[test]
fn globs_and_directories_expand_to_their_files() {
    let db = TestDb::with_schema("globs");
    let dir = scratch_dir("globs");
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("nested")).unwrap();
    let files = [
        generated_file(&logs, "app-1.ndjson", 100, 41),
        generated_file(&logs, "app-2.ndjson", 100, 42),
        generated_file(&logs.join("nested"), "deep.ndjson", 100, 43),
    ];
    generated_file(&logs, "other.txt", 100, 44);
    std::fs::write(logs.join(".hidden"), "not json\n").unwrap();
    let pattern = format!("{}/app-*.ndjson", logs.display());
    assert_success(&db.logctl(&["load", &pattern]).output().unwrap());
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 200);
    // The directory adds the nested file; other.txt has no log name and the hidden
    // file is hidden.
    let summary = db.logctl_json(&["load", "--format", "json", logs.to_str().unwrap()]);
    assert_eq!(summary["files"], 3);
    assert_eq!(summary["files_already_loaded"], 2);
    assert_loaded_exactly(&db, &[&files[0], &files[1], &files[2]]);
    let other = logs.join("other.txt");
    let summary = db.logctl_json(&[
        "load",
        "--format",
        "json",
        "--include",
        "*.txt",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(
        summary["files"], 1,
        "--include chooses instead of the log names"
    );
    assert_loaded_exactly(&db, &[&files[0], &files[1], &files[2], &other]);
}

fn pipe_into(db: &TestDb, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = db
        .logctl(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_is_recorded_under_its_source_name_and_not_loaded_twice() {
    let db = TestDb::with_schema("stdin_source");
    let dir = scratch_dir("stdin_source");
    let file = generated_file(&dir, "a.ndjson", 500, 51);
    let content = std::fs::read(&file).unwrap();
    assert_success(&pipe_into(
        &db,
        &["load", "-", "--source", "app-stream"],
        &content,
    ));
    let names: Vec<String> = db
        .query("SELECT source_name FROM logctl_sources")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["app-stream"]);
    // Compressed stdin, same content: nothing new.
    let gz = dir.join("a.gz");
    gzip(&file, &gz);
    let output = pipe_into(
        &db,
        &["load", "-", "--format", "json"],
        &std::fs::read(&gz).unwrap(),
    );
    assert_success(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["loaded"], 0);
    assert_eq!(loaded_events(&db), expected_events(&file));
}

#[test]
fn a_truncated_gzip_file_is_an_error_and_its_complete_lines_are_loaded() {
    let db = TestDb::with_schema("truncated");
    let dir = scratch_dir("truncated");
    let file = generated_file(&dir, "a.ndjson", 3000, 61);
    let gz = dir.join("a.ndjson.gz");
    gzip(&file, &gz);
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let output = db.logctl(&["load", gz.to_str().unwrap()]).output().unwrap();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot read"),
        "{}",
        stderr(&output)
    );
    let loaded = db.count("SELECT count(*) FROM log_events");
    assert!(
        loaded > 500 && loaded < 3000,
        "{loaded} lines before the cut"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let mut expected: Vec<Event> = text
        .lines()
        .take(loaded as usize)
        .map(expected_event)
        .collect();
    expected.sort();
    assert_eq!(
        loaded_events(&db),
        expected,
        "exactly the first lines, none of them damaged"
    );
}

/// Whether some line of stderr warns about `path` (its name followed by the reason).
fn warns_about(output: &std::process::Output, path: &Path, reason: &str) -> bool {
    let named = format!("{}:", path.display());
    stderr(output)
        .lines()
        .any(|line| line.contains("warning") && line.contains(&named) && line.contains(reason))
}

#[test]
fn fifos_and_symbolic_link_loops_found_in_a_directory_or_a_glob_are_skipped_with_a_warning() {
    let db = TestDb::with_schema("odd_entries");
    let dir = scratch_dir("odd_entries");
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = generated_file(&logs, "app.ndjson", 300, 71);
    make_fifo(&logs.join("pipe"));
    std::os::unix::fs::symlink(".", logs.join("a")).unwrap();
    std::os::unix::fs::symlink("../logs", logs.join("b")).unwrap();
    for inputs in [
        logs.display().to_string(),
        format!("{}/*", logs.display()),
        format!("{}/**/*.ndjson", logs.display()),
    ] {
        let output = run_within(&mut db.logctl(&["load", &inputs]), 60);
        assert_exit(&output, 0);
        if !inputs.ends_with(".ndjson") {
            assert!(
                warns_about(&output, &logs.join("pipe"), "FIFO"),
                "{inputs}: {}",
                stderr(&output)
            );
        }
        for link in ["a", "b"] {
            assert!(
                warns_about(&output, &logs.join(link), "loop"),
                "{inputs}: {}",
                stderr(&output)
            );
        }
        assert_loaded_exactly(&db, &[&file]);
    }
}

#[test]
fn a_fifo_named_on_the_command_line_is_read_like_stdin_under_its_name() {
    let db = TestDb::with_schema("named_fifo");
    let dir = scratch_dir("named_fifo");
    let file = generated_file(&dir, "app.ndjson", 400, 72);
    let fifo = dir.join("pipe");
    make_fifo(&fifo);
    let child = spawn_load(&db, &[fifo.to_str().unwrap()]);
    // Opening the writing end waits for logctl to open the reading end.
    std::fs::write(&fifo, std::fs::read(&file).unwrap()).unwrap();
    assert_success(&wait_within(child, 60));
    assert_loaded_exactly(&db, &[&file]);
    let names: Vec<String> = db
        .query("SELECT source_name FROM logctl_sources")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, [fifo.display().to_string()]);
}

/// Makes `path` unreadable for the test's lifetime (`chmod 000`), and readable again after.
struct Locked<'a>(&'a Path, u32);

impl<'a> Locked<'a> {
    fn new(path: &'a Path) -> Locked<'a> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
        Locked(path, mode)
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(self.1));
    }
}

#[test]
fn unreadable_entries_are_named_and_everything_else_is_loaded() {
    let db = TestDb::with_schema("unreadable");
    let dir = scratch_dir("unreadable");
    let logs = dir.join("logs");
    let closed_dir = logs.join("closed");
    std::fs::create_dir_all(&closed_dir).unwrap();
    std::fs::create_dir_all(logs.join("open")).unwrap();
    let first = generated_file(&logs, "a.ndjson", 200, 73);
    let nested = generated_file(&logs.join("open"), "b.ndjson", 200, 74);
    generated_file(&closed_dir, "hidden-by-permissions.ndjson", 200, 75);
    let closed_file = generated_file(&logs, "c.ndjson", 200, 76);
    let _locked = [Locked::new(&closed_dir), Locked::new(&closed_file)];
    for inputs in [
        logs.display().to_string(),
        format!("{}/*", logs.display()),
        format!("{}/**/*.ndjson", logs.display()),
    ] {
        let output = run_within(&mut db.logctl_unprivileged(&["load", &inputs]), 60);
        assert_exit(&output, 1);
        let err = stderr(&output);
        for closed in [&closed_dir, &closed_file] {
            assert!(
                err.lines().any(|line| line.contains("error")
                    && line.contains(&closed.display().to_string())
                    && line.contains("Permission denied")),
                "{inputs}: {err}"
            );
        }
        assert_loaded_exactly(&db, &[&first, &nested]);
    }
}

#[test]
fn the_reject_file_and_redirected_output_inside_an_input_directory_are_never_inputs() {
    let db = TestDb::with_schema("own_outputs");
    let dir = scratch_dir("own_outputs");
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = generated_file(&logs, "app.ndjson", 300, 77);
    let mut content = std::fs::read(&file).unwrap();
    content.extend_from_slice(b"not json\n");
    std::fs::write(&file, &content).unwrap();
    let rejects = logs.join("rejects.ndjson");
    let output_file = logs.join("logctl.out");
    let load = |format: &str| {
        let redirected = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&output_file)
            .unwrap();
        let output = db
            .logctl(&[
                "load",
                logs.to_str().unwrap(),
                "--rejects",
                rejects.to_str().unwrap(),
                "--format",
                format,
            ])
            .stdout(redirected.try_clone().unwrap())
            .stderr(redirected)
            .status()
            .unwrap();
        (output.code(), std::fs::metadata(&rejects).unwrap().len())
    };
    // The reject file does not exist yet when the inputs are expanded: the run creates it.
    let (first, rejects_size) = load("text");
    assert_eq!(first, Some(4));
    assert!(rejects_size > 0);
    let (second, size_after) = load("json");
    assert_eq!(
        second,
        Some(0),
        "{}",
        std::fs::read_to_string(&output_file).unwrap()
    );
    assert_eq!(size_after, rejects_size, "the reject file did not grow");
    let summary = std::fs::read_to_string(&output_file).unwrap();
    let summary: serde_json::Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
    assert_eq!(summary["files"], 1, "{summary}");
    assert_eq!(summary["loaded"], 0);
    let mut valid = content.clone();
    valid.truncate(content.len() - b"not json\n".len());
    let expected_file = dir.join("valid.ndjson");
    std::fs::write(&expected_file, valid).unwrap();
    assert_loaded_exactly(&db, &[&expected_file]);
}
