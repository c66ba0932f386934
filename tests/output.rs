//! Report tables as people see them: at 40, 60, 80 and 200 columns, through a pseudo-
//! terminal and through `COLUMNS` or `--width` when piped, every number, time and id in
//! the database appears whole; piped output has no box drawing and no escape codes;
//! colour follows `--color` and `NO_COLOR`.

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use expectrl::Expect;
use unicode_width::UnicodeWidthStr;

const WIDTHS: [usize; 4] = [40, 60, 80, 200];

/// A loaded database with long names beside the numbers: a table can only fit a narrow
/// display by shortening the names.
fn loaded() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| {
        let db = TestDb::with_schema("output");
        let dir = scratch_dir("output");
        let file = generated_file(&dir, "app.ndjson", 3000, 5);
        let long = dir.join("a-rather-long-file-name-that-names-the-source.ndjson");
        std::fs::write(
            &long,
            "{\"ts\":\"2026-11-24T10:00:00.123Z\",\"service\":\"a-service-with-a-very-long-name-indeed\",\
             \"latency_ms\":600000,\"status\":503,\"endpoint\":\"/api/v1/orders/with/a/long/path/to/it\"}\n",
        )
        .unwrap();
        let output = db
            .logctl(&["load", file.to_str().unwrap(), long.to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&output);
        db
    })
}

/// What the slow report must show whole: each slow request's latency, status and time.
fn numbers() -> Vec<String> {
    let db = loaded();
    let numbers: Vec<String> = db
        .query(
            "SELECT latency_ms::text, coalesce(status::text, ''), \
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') \
             FROM log_events WHERE latency_ms > 2000",
        )
        .iter()
        .flat_map(|row| [row.get::<_, String>(0), row.get(1), row.get(2)])
        .filter(|text| !text.is_empty())
        .collect();
    assert!(numbers.len() > 100, "enough slow requests to matter");
    numbers
}

/// Each source's counts, as `status --format json` gives them.
fn status_numbers() -> Vec<String> {
    let json = loaded().logctl_json(&["status", "--format", "json"]);
    json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|source| ["lines", "bytes", "loaded"].map(|key| source[key].to_string()))
        .collect()
}

/// The words of a table: its cells, between spaces and the lines that separate columns.
fn words(text: &str) -> std::collections::HashSet<String> {
    let mut words = std::collections::HashSet::new();
    for line in text.lines() {
        for cell in line.split(['│', '┆', '|']) {
            words.insert(cell.trim().to_string());
            words.extend(cell.split_whitespace().map(str::to_string));
        }
    }
    words
}

fn assert_whole(text: &str, numbers: &[String], what: &str) {
    assert!(
        text.contains(&database_name()),
        "{what}: the database is named\n{text}"
    );
    let words = words(text);
    for number in numbers {
        // A time has a space inside: it must be on one line, unshortened.
        let found = if number.contains(' ') {
            text.lines().any(|line| line.contains(number.as_str()))
        } else {
            words.contains(number)
        };
        assert!(found, "{what}: `{number}` is not whole in\n{text}");
    }
}

/// The test database as reports name it: user@socket:port/name.
fn database_name() -> String {
    let db = loaded();
    format!(
        "logctl@{}:5432/{}",
        cluster().root().join("run").display(),
        db.name
    )
}

/// Every line fits, but the database's name, an id that is shown whole however long.
fn assert_fits(text: &str, width: usize, what: &str) {
    for line in text.lines().filter(|line| !line.contains("logctl@")) {
        let shown = console::strip_ansi_codes(line);
        assert!(
            UnicodeWidthStr::width(shown.as_ref()) <= width,
            "{what}: a line is wider than {width}: `{line}`\n{text}"
        );
    }
}

fn has_box_drawing(text: &str) -> bool {
    text.chars().any(|c| ('\u{2500}'..='\u{257F}').contains(&c))
}

#[test]
fn piped_tables_fit_columns_or_width_and_never_split_a_number() {
    let reports = [
        (
            vec!["slow", "--threshold", "2000", "--limit", "0"],
            numbers(),
        ),
        (vec!["status"], status_numbers()),
    ];
    for width in WIDTHS {
        let width_text = width.to_string();
        for (report, numbers) in &reports {
            let by_variable = loaded()
                .logctl(report)
                .env("COLUMNS", &width_text)
                .output()
                .unwrap();
            assert_success(&by_variable);
            let with_flag: Vec<&str> = report
                .iter()
                .copied()
                .chain(["--width", &width_text])
                .collect();
            let by_flag = loaded().logctl(&with_flag).output().unwrap();
            assert_success(&by_flag);
            assert_eq!(by_variable.stdout, by_flag.stdout, "{report:?} at {width}");
            let text = stdout(&by_flag);
            let what = format!("{report:?} at {width} columns");
            assert_fits(&text, width, &what);
            assert!(!has_box_drawing(&text) && !text.contains('\x1b'), "{text}");
            assert_whole(&text, numbers, &what);
        }
    }
    let narrow = stdout(
        &loaded()
            .logctl(&["slow", "--width", "40"])
            .output()
            .unwrap(),
    );
    assert!(narrow.contains("-[ RECORD 1 ]"), "{narrow}");
    let wide = stdout(
        &loaded()
            .logctl(&["slow", "--width", "200"])
            .output()
            .unwrap(),
    );
    assert!(!wide.contains("RECORD") && !wide.contains('…'), "{wide}");
}

#[test]
fn piped_tables_without_a_width_are_never_cut_or_boxed() {
    let output = loaded().logctl(&["status"]).output().unwrap();
    assert_success(&output);
    let text = stdout(&output);
    assert!(
        text.contains("a-rather-long-file-name-that-names-the-source.ndjson"),
        "{text}"
    );
    assert!(
        !has_box_drawing(&text) && !text.contains('\x1b') && !text.contains('…'),
        "{text}"
    );
}

/// Runs logctl on a pseudo-terminal of `width` columns, and returns what it showed.
fn on_terminal(args: &[&str], width: u16, environment: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logctl"));
    command
        .args(args)
        .env("DATABASE_URL", &loaded().url)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    for (name, value) in environment {
        command.env(name, value);
    }
    let mut session = expectrl::session::Session::spawn(command).unwrap();
    session
        .get_process_mut()
        .set_window_size(width, 50)
        .unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    let shown = session.expect(expectrl::Eof).unwrap();
    String::from_utf8_lossy(shown.as_bytes()).replace("\r\n", "\n")
}

#[test]
fn terminal_tables_fit_the_terminal_and_never_split_a_number() {
    let numbers = numbers();
    for width in WIDTHS {
        let text = on_terminal(
            &[
                "slow",
                "--threshold",
                "2000",
                "--limit",
                "0",
                "--color",
                "never",
            ],
            width as u16,
            &[],
        );
        let what = format!("a terminal of {width} columns");
        assert_fits(&text, width, &what);
        assert_whole(&text, &numbers, &what);
        if width >= 80 {
            assert!(has_box_drawing(&text), "{what}: boxed\n{text}");
        } else {
            assert!(text.contains("-[ RECORD 1 ]"), "{what}: records\n{text}");
        }
    }
}

#[test]
fn colour_follows_the_terminal_no_color_and_the_flag() {
    let escape = '\x1b';
    assert!(
        on_terminal(&["status"], 120, &[]).contains(escape),
        "coloured on a terminal"
    );
    assert!(!on_terminal(&["status"], 120, &[("NO_COLOR", "1")]).contains(escape));
    assert!(!on_terminal(&["status", "--color", "never"], 120, &[]).contains(escape));
    let forced = loaded()
        .logctl(&["status", "--color", "always"])
        .output()
        .unwrap();
    assert!(stdout(&forced).contains(escape), "--color always, piped");
    let refused = loaded()
        .logctl(&["slow", "--since", "nonsense"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stderr(&refused).contains(escape), "{}", stderr(&refused));
    let red = on_terminal(&["slow", "--since", "nonsense"], 120, &[]);
    assert!(
        red.contains(escape) && red.contains("--since `nonsense`"),
        "{red}"
    );
}
