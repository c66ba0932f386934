//! `logctl report`: its JSON data model against plain SQL over the raw rows and against
//! `slow`'s JSON, and its HTML page rendered from a generated database, checked by tidy
//! and opened in a real headless chromium with scripts disabled and no network: no
//! console error, no failed or outside request, the headline figures in the DOM equal
//! the JSON's, each chart has one bucket per timeline bucket (empty ones zero-filled),
//! the page fits a phone's width, dark and print styles apply, and screenshots at
//! desktop and phone widths (kept under target/tmp/html-report/) are not blank.

mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use browser::{Browser, assert_not_blank};
use common::*;
use serde_json::Value;

const WINDOW: [&str; 4] = [
    "--since",
    "2026-11-24T00:00:00Z",
    "--until",
    "2026-11-24T06:00:00Z",
];

/// Two stretches of generated logs a few hours apart in the window (so that most of
/// its buckets are empty), and one the day before, for --compare 1d; in a database and
/// a directory named by `tag`, as tests run at once.
fn database(tag: &str) -> (TestDb, PathBuf) {
    let db = TestDb::with_schema(tag);
    let dir = scratch_dir(tag);
    for (name, lines, seed, start) in [
        ("a.ndjson", 3000, 1, "2026-11-24T00:40:00Z"),
        ("b.ndjson", 2000, 2, "2026-11-24T03:10:00Z"),
        ("c.ndjson", 2500, 3, "2026-11-23T01:00:00Z"),
    ] {
        let path = dir.join(name);
        let output = logctl_bare(&[
            "gen",
            "--lines",
            &lines.to_string(),
            "--seed",
            &seed.to_string(),
            "--start",
            start,
            "--output",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        assert_success(&output);
        assert_success(
            &db.logctl(&["load", path.to_str().unwrap()])
                .output()
                .unwrap(),
        );
    }
    (db, dir)
}

fn report_json(db: &TestDb) -> Value {
    let mut args = vec!["report", "--compare", "1d", "--format", "json"];
    args.extend(WINDOW);
    db.logctl_json(&args)
}

/// Where the test keeps what it made, for people to look at.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_json_report_agrees_with_sql_over_the_raw_rows_and_with_slow() {
    let (db, _dir) = database("html_json");
    let report = report_json(&db);
    let window = "created_at >= '2026-11-24T00:00:00Z' AND created_at < '2026-11-24T06:00:00Z'";
    let errors = "(status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic'))";
    let headline = &report["summary"]["overall"];
    assert_eq!(
        headline["requests"],
        db.count(&format!("SELECT count(*) FROM log_events WHERE {window}"))
    );
    assert_eq!(
        headline["errors"],
        db.count(&format!(
            "SELECT count(*) FROM log_events WHERE {window} AND {errors}"
        ))
    );
    let previous = &report["summary"]["previous"];
    assert_eq!(
        previous["requests"],
        db.count(
            "SELECT count(*) FROM log_events WHERE created_at >= '2026-11-23T00:00:00Z' \
             AND created_at < '2026-11-23T06:00:00Z'"
        )
    );
    for (name, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        let exact: i32 = db.client().query_one(
            &format!("SELECT percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) FROM log_events WHERE {window}"),
            &[],
        ).unwrap().get(0);
        let estimate = headline[name].as_f64().unwrap();
        assert!(
            (estimate - f64::from(exact)).abs() <= f64::from(exact) * 0.01 + 0.05,
            "{name}: {estimate} against {exact}"
        );
    }
    // Six hours in 5-minute buckets, every one present, in each timeline; the sums are
    // the headline's.
    for timeline in ["requests", "error_rate", "p95"] {
        assert_eq!(report[timeline]["bucket_seconds"], 300, "{timeline}");
        assert_eq!(report[timeline]["starts"], report["requests"]["starts"]);
    }
    let buckets = report["requests"]["series"][0]["values"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), 72);
    assert!(buckets.iter().filter(|&b| b == 0.0).count() > 50);
    let sum: f64 = buckets.iter().map(|b| b.as_f64().unwrap()).sum();
    assert_eq!(Some(sum as u64), headline["requests"].as_u64());
    // Per service, the counts of SQL.
    let services: Vec<(String, i64)> = db
        .query(&format!(
            "SELECT service_name, count(*) FROM log_events JOIN services USING (service_id) \
             WHERE {window} GROUP BY 1 ORDER BY 2 DESC, 1"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let reported: Vec<(String, i64)> = report["summary"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["figures"]["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(reported, services);
    // The slowest requests are what `slow` lists above the same threshold.
    let threshold = report["slowest"]["threshold_ms"]
        .as_i64()
        .unwrap()
        .to_string();
    let mut args = vec![
        "slow",
        "--threshold",
        &threshold,
        "--limit",
        "10",
        "--format",
        "json",
    ];
    args.extend(WINDOW);
    let slow = db.logctl_json(&args);
    assert_eq!(report["slowest"]["requests"], slow["requests"]);
    assert_eq!(report["slowest"]["requests"].as_array().unwrap().len(), 10);
    // The error signatures are what `errors` lists for the same window against the day
    // before.
    let mut args = vec![
        "errors",
        "--compare",
        "1d",
        "--limit",
        "10",
        "--format",
        "json",
    ];
    args.extend(WINDOW);
    let errors = db.logctl_json(&args);
    let listed = |rows: &Value| -> Vec<(Value, Value, Value)> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["signature"].clone(),
                    row["count"].clone(),
                    row["new"].clone(),
                )
            })
            .collect()
    };
    let signatures = listed(&report["errors"]["signatures"]);
    assert_eq!(signatures, listed(&errors["errors"]));
    assert!(!signatures.is_empty());
    assert!(
        signatures.iter().any(|(_, _, new)| new == true),
        "some are new"
    );
}

#[test]
fn the_html_page_renders_offline_without_scripts_and_shows_the_json_figures() {
    let (db, dir) = database("html_page");
    let json = report_json(&db);
    let page = dir.join("week.html");
    let mut args = vec!["report", "--compare", "1d", "-o", page.to_str().unwrap()];
    args.extend(WINDOW);
    let output = db.logctl(&args).output().unwrap();
    assert_success(&output);
    assert!(stdout(&output).is_empty(), "the page goes to the file only");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 1024 * 1024, "{} bytes", html.len());
    std::fs::copy(&page, artefacts().join("report.html")).unwrap();
    for outside in ["http://", "https://", "<script", "@import", "url(http"] {
        assert!(!html.contains(outside), "the page holds {outside}");
    }
    validate(&page);

    let mut browser = Browser::launch(&scratch_dir("chromium-profile"));
    browser.resize(1280, 900, false);
    browser.open(&page);

    // The headline as the DOM shows it, against the JSON.
    let figures = browser.eval(
        "[...document.querySelectorAll('[data-figure]')].map(e => \
         [e.dataset.figure, e.dataset.value, e.textContent])",
    );
    let figures = figures.as_array().unwrap();
    assert_eq!(figures.len(), 6);
    let current = &json["summary"]["overall"];
    for figure in figures {
        let (name, value, text) = (
            figure[0].as_str().unwrap(),
            figure[1].as_str().unwrap(),
            figure[2].as_str().unwrap(),
        );
        let expected = &current[name];
        assert_eq!(value.parse::<f64>().ok(), expected.as_f64(), "{name}");
        let shown = match name {
            "requests" | "errors" => text.replace(',', ""),
            "error_rate" => format!("{:.2}", expected.as_f64().unwrap() * 100.0) + "%",
            _ => format!("{:.1} ms", expected.as_f64().unwrap()),
        };
        match name {
            "requests" | "errors" => assert_eq!(shown, expected.to_string(), "{name}"),
            _ => assert_eq!(text, shown, "{name}"),
        }
    }
    let changes = browser.eval("document.querySelectorAll('[data-change]').length");
    assert_eq!(
        changes, 6,
        "each figure with its change against the day before"
    );

    // One bucket per timeline bucket in each chart, and in the table beneath them.
    let buckets = json["requests"]["starts"].as_array().unwrap();
    let values = |timeline: &str| json[timeline]["series"][0]["values"].as_array().unwrap();
    let with_requests = values("requests").iter().filter(|&v| v != 0.0).count();
    let with_latency = values("p95").iter().filter(|v| !v.is_null()).count();
    let charts = browser.eval(
        "Object.fromEntries([...document.querySelectorAll('svg.chart')].map(s => [s.id, \
         [s.querySelectorAll('g.bucket').length, s.querySelectorAll('rect.bar').length, \
          s.querySelectorAll('circle.point').length, s.querySelectorAll('text').length]]))",
    );
    for id in ["chart-requests", "chart-errors", "chart-latency"] {
        assert_eq!(charts[id][0], buckets.len(), "{id}: {charts}");
        assert!(charts[id][3].as_u64().unwrap() > 5, "{id} has axis labels");
    }
    assert_eq!(charts["chart-requests"][1], with_requests);
    assert_eq!(charts["chart-latency"][2], with_latency);
    assert_eq!(
        charts["chart-histogram"][0],
        json["latency"]["bins"].as_array().unwrap().len()
    );
    let rows = browser.eval("document.querySelectorAll('#table-timeline tbody tr').length");
    assert_eq!(rows, buckets.len());

    // One row per error signature, the new ones (none the day before) marked.
    let signatures = json["errors"]["signatures"].as_array().unwrap();
    let new = signatures.iter().filter(|s| s["new"] == true).count();
    let rows = browser.eval(
        "[document.querySelectorAll('#table-errors tbody tr').length, \
          document.querySelectorAll('#table-errors tbody tr.new').length]",
    );
    assert_eq!(rows, serde_json::json!([signatures.len(), new]));

    // The DOM is sound: sections in order, unique ids, tables with headers, a language.
    let sections = browser.eval("[...document.querySelectorAll('main > section')].map(s => s.id)");
    assert_eq!(
        sections,
        serde_json::json!([
            "headline",
            "over-time",
            "services",
            "routes",
            "latency",
            "errors",
            "slowest"
        ])
    );
    let sound = browser.eval(
        "(() => { const ids = [...document.querySelectorAll('[id]')].map(e => e.id); \
         return [new Set(ids).size === ids.length, document.documentElement.lang, \
         [...document.querySelectorAll('table')].every(t => t.tHead && t.caption), \
         document.querySelectorAll('svg.chart:not([aria-labelledby])').length, \
         performance.getEntriesByType('resource').length]; })()",
    );
    assert_eq!(sound, serde_json::json!([true, "en", true, 0, 0]));

    let desktop = browser.screenshot();
    std::fs::write(artefacts().join("desktop.png"), &desktop).unwrap();
    let (width, _) = assert_not_blank(&desktop, "the desktop screenshot");
    assert_eq!(width, 1280);

    // A phone: nothing wider than the screen (wide tables scroll inside their boxes).
    browser.resize(390, 844, true);
    let overflow = browser.eval("document.documentElement.scrollWidth");
    assert!(
        overflow.as_u64().unwrap() <= 390,
        "{overflow} px wide on a phone"
    );
    let phone = browser.screenshot();
    std::fs::write(artefacts().join("phone.png"), &phone).unwrap();
    assert_not_blank(&phone, "the phone screenshot");

    // Dark, and printed.
    browser.resize(1280, 900, false);
    browser.media("", "dark");
    let background = browser.eval("getComputedStyle(document.body).backgroundColor");
    assert_eq!(background, "rgb(13, 17, 23)");
    let dark = browser.screenshot();
    std::fs::write(artefacts().join("dark.png"), &dark).unwrap();
    assert_not_blank(&dark, "the dark screenshot");
    browser.media("print", "light");
    let printed = browser.eval(
        "[getComputedStyle(document.querySelector('.table-wrap.tall')).maxHeight, \
          getComputedStyle(document.body).backgroundColor]",
    );
    assert_eq!(printed, serde_json::json!(["none", "rgb(255, 255, 255)"]));

    assert!(
        browser.console_errors.is_empty(),
        "console errors: {:?}",
        browser.console_errors
    );
    assert!(
        browser.failed_requests.is_empty(),
        "failed requests: {:?}",
        browser.failed_requests
    );
    assert!(
        browser.outside_requests.is_empty(),
        "requests beyond the file: {:?}",
        browser.outside_requests
    );
}

/// The page is valid HTML by tidy (errors fail; warnings are printed).
fn validate(page: &Path) {
    let output = Command::new("tidy")
        .args(["-q", "-e", "--show-warnings", "yes"])
        .arg(page)
        .output()
        .expect("tidy runs (scripts/test.sh installs it)");
    let report = String::from_utf8_lossy(&output.stderr);
    // tidy exits 0 when clean, 1 with warnings, 2 with errors.
    assert!(
        output.status.code().is_some_and(|code| code < 2),
        "tidy finds errors:\n{report}"
    );
    assert!(!report.contains("Error:"), "{report}");
}

#[test]
fn report_refuses_html_with_another_format() {
    let db = TestDb::with_schema("html_usage");
    let output = db
        .logctl(&["report", "--format", "json", "-o", "x.html"])
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--format"), "{}", stderr(&output));
}
