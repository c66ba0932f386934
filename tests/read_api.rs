//! The rollups' read API against plain SQL over the raw rows of the same database:
//! counts and error counts exactly, quantiles within 1% of `percentile_disc`, for ranges
//! that start and end inside minutes and hours, buckets, filters and groupings, with the
//! deltas compacted and with them still pending.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use logctl::analytics::read::{Dimension, Filter, Query, StatusFilter, read};

const ERROR: &str = "(status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic'))";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Runs the read API on the test database.
fn ask(db: &TestDb, query: &Query) -> logctl::analytics::read::Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        read(&client, query).await.unwrap()
    })
}

fn query(from: &str, until: &str) -> Query {
    Query {
        from: at(from),
        until: at(until),
        filter: Filter::default(),
        bucket: None,
        by: None,
        exact: false,
    }
}

/// Per group, (events, errors) from SQL over the raw rows of [from, until).
fn raw_counts(
    db: &TestDb,
    group: &str,
    condition: &str,
    from: &str,
    until: &str,
) -> Vec<(String, i64, i64)> {
    let counts: Vec<(String, i64, i64)> = db
        .query(&format!(
            "SELECT coalesce(({group})::text, ''), count(*), count(*) FILTER (WHERE {ERROR}) \
         FROM log_events l JOIN services s USING (service_id) \
         WHERE created_at >= '{from}' AND created_at < '{until}' AND {condition} \
         GROUP BY 1 ORDER BY 1"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert!(!counts.is_empty(), "a question with an answer");
    counts
}

fn api_counts(answer: &logctl::analytics::read::Answer) -> Vec<(String, i64, i64)> {
    answer
        .series
        .iter()
        .map(|(label, buckets)| {
            let events: u64 = buckets.iter().map(|m| m.events).sum();
            let errors: u64 = buckets.iter().map(|m| m.errors).sum();
            (label.clone(), events as i64, errors as i64)
        })
        .filter(|(_, events, _)| *events > 0)
        .collect()
}

/// Twelve stretches of generated logs, 25 minutes apart from midnight: hours with
/// events and hours without, loaded in two runs (the first into the empty table).
fn load_stretches(db: &TestDb, tag: &str) {
    let dir = scratch_dir(tag);
    let files: Vec<String> = (0..12)
        .map(|i| {
            let path = dir.join(format!("logs{i}.ndjson"));
            let start = format!("2026-11-24T{:02}:{:02}:00Z", i * 25 / 60, i * 25 % 60);
            let output = logctl_bare(&[
                "gen",
                "--lines",
                "5000",
                "--seed",
                &i.to_string(),
                "--start",
                &start,
                "--output",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
            assert_success(&output);
            path.display().to_string()
        })
        .collect();
    for half in files.chunks(6) {
        let mut args = vec!["load"];
        args.extend(half.iter().map(String::as_str));
        assert_success(&db.logctl(&args).output().unwrap());
    }
}

fn loaded_db(tag: &str) -> TestDb {
    let db = TestDb::with_schema(tag);
    load_stretches(&db, tag);
    db
}

fn check_every_question(db: &TestDb) {
    // Per service over a range that starts and ends inside a minute.
    let (from, until) = ("2026-11-24T00:07:13.5Z", "2026-11-24T03:41:09Z");
    let mut by_service = query(from, until);
    by_service.by = Some(Dimension::Service);
    let answer = ask(db, &by_service);
    assert_eq!(
        api_counts(&answer),
        raw_counts(db, "s.service_name", "true", from, until),
        "per service"
    );
    // Quantiles within 1% of percentile_disc, per service.
    for (service, buckets) in &answer.series {
        let mut sketch = logctl::analytics::sketch::Sketch::new();
        for measures in buckets {
            sketch.merge(&measures.latency);
        }
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact: Option<i32> = db.query(&format!(
                "SELECT percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) \
                 FROM log_events l JOIN services s USING (service_id) \
                 WHERE s.service_name = '{service}' AND created_at >= '{from}' AND created_at < '{until}'"
            ))[0]
                .get(0);
            let (Some(exact), Some(estimate)) = (exact, sketch.quantile(q)) else {
                panic!("{service} p{q}: no value");
            };
            let error = (estimate - f64::from(exact)).abs() / f64::from(exact).max(1.0);
            assert!(error <= 0.01, "{service} p{q}: {estimate} against {exact}");
        }
    }
    // A timeline in 5-minute buckets: every bucket there, each count exact.
    let mut timeline = query(from, until);
    timeline.bucket = Some(5 * 60_000_000);
    let answer = ask(db, &timeline);
    assert_eq!(answer.buckets.len(), 44, "00:05 to 03:40, every 5 minutes");
    let expected: Vec<(i64, i64)> = db
        .query(&format!(
            "SELECT count(l.*), count(l.*) FILTER (WHERE {ERROR}) \
             FROM generate_series('2026-11-24T00:05:00Z'::timestamptz, '2026-11-24T03:40:00Z', '5 minutes') b \
             LEFT JOIN log_events l ON date_bin('5 minutes', l.created_at, '2000-01-01Z') = b \
                 AND l.created_at >= '{from}' AND l.created_at < '{until}' \
             GROUP BY b ORDER BY b"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let total: Vec<(i64, i64)> = answer
        .total()
        .iter()
        .map(|m| (m.events as i64, m.errors as i64))
        .collect();
    assert_eq!(total, expected, "timeline");
    // A route pattern by status, over hours that start and end inside an hour.
    let (from, until) = ("2026-11-24T01:20:00Z", "2026-11-24T04:50:30Z");
    let mut routes = query(from, until);
    routes.filter.route = Some("/api/v1/orders*".into());
    routes.by = Some(Dimension::Status);
    assert_eq!(
        api_counts(&ask(db, &routes)),
        raw_counts(
            db,
            "l.status",
            "l.route LIKE '/api/v1/orders%'",
            from,
            until
        ),
        "orders routes by status"
    );
    // 5xx, by level; and one service by method.
    let mut errors = query(from, until);
    errors.filter.statuses = vec![StatusFilter::Class(5)];
    errors.by = Some(Dimension::Level);
    assert_eq!(
        api_counts(&ask(db, &errors)),
        raw_counts(db, "l.level", "l.status BETWEEN 500 AND 599", from, until),
        "5xx by level"
    );
    let mut methods = query(from, until);
    methods.filter.services = vec!["payments".into()];
    methods.by = Some(Dimension::Method);
    assert_eq!(
        api_counts(&ask(db, &methods)),
        raw_counts(db, "l.method", "s.service_name = 'payments'", from, until),
        "payments by method"
    );
    // From the raw rows, the same counts.
    let mut exact = methods.clone();
    exact.exact = true;
    let exact_answer = ask(db, &exact);
    assert!(exact_answer.raw_rows_read && !exact_answer.rollups_read);
    assert_eq!(api_counts(&exact_answer), api_counts(&ask(db, &methods)));
}

#[test]
fn answers_equal_plain_sql_over_the_raw_rows() {
    let db = loaded_db("read_api");
    check_every_question(&db);
}

#[test]
fn answers_are_the_same_while_deltas_are_pending() {
    let db = TestDb::with_schema("read_api_pending");
    let mut holder = db.client();
    let mut holding = holder.transaction().unwrap();
    holding
        .execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&0x6c6f_6763_726f_6c6ci64],
        )
        .unwrap();
    load_stretches(&db, "read_api_pending");
    assert!(db.count("SELECT count(*) FROM logctl_rollup_deltas") > 0);
    check_every_question(&db);
    holding.rollback().unwrap();
}
