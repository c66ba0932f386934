//! The rollups' read API against plain SQL over the raw rows of the same database:
//! counts and error counts exactly, quantiles within 1% of `percentile_disc`, for ranges
//! that start and end inside minutes and hours, buckets, filters and groupings, with the
//! deltas compacted and with them still pending.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use logctl::analytics::read::{Dimension, Query, StatusFilter, read};

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
    Query::new(at(from), at(until))
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
            (label.join(" "), events as i64, errors as i64)
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

/// The read API's timeline of `window` in buckets of `minutes`, bucket by bucket, equals
/// plain SQL over the raw rows: `first` is the first bucket's start and how many there
/// are, every one of them, empty or not.
fn timeline_equals_sql(db: &TestDb, window: (&str, &str), minutes: i64, first: (&str, usize)) {
    let (from, until) = window;
    let mut timeline = query(from, until);
    timeline.bucket = Some(minutes * 60_000_000);
    let answer = ask(db, &timeline);
    assert_eq!(answer.buckets.len(), first.1, "{minutes}-minute buckets");
    let expected: Vec<(i64, i64)> = db
        .query(&format!(
            "SELECT count(l.*), count(l.*) FILTER (WHERE {ERROR}) \
             FROM generate_series('{start}'::timestamptz, \
                  '{start}'::timestamptz + interval '{minutes} minutes' * {last}, \
                  interval '{minutes} minutes') b \
             LEFT JOIN log_events l \
                 ON date_bin(interval '{minutes} minutes', l.created_at, '2000-01-01Z') = b \
                 AND l.created_at >= '{from}' AND l.created_at < '{until}' \
             GROUP BY b ORDER BY b",
            start = first.0,
            last = first.1 - 1,
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let total: Vec<(i64, i64)> = answer
        .by_bucket()
        .iter()
        .map(|m| (m.events as i64, m.errors as i64))
        .collect();
    assert_eq!(total, expected, "{minutes}-minute timeline");
}

fn check_every_question(db: &TestDb) {
    // Per service over a range that starts and ends inside a minute.
    let (from, until) = ("2026-11-24T00:07:13.5Z", "2026-11-24T03:41:09Z");
    let mut by_service = query(from, until);
    by_service.by = vec![Dimension::Service];
    let answer = ask(db, &by_service);
    assert_eq!(
        api_counts(&answer),
        raw_counts(db, "s.service_name", "true", from, until),
        "per service"
    );
    // Quantiles within 1% of percentile_disc, per service.
    for (key, stats) in answer.by_group() {
        let service = &key[0];
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let exact: Option<i32> = db.query(&format!(
                "SELECT percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) \
                 FROM log_events l JOIN services s USING (service_id) \
                 WHERE s.service_name = '{service}' AND created_at >= '{from}' AND created_at < '{until}'"
            ))[0]
                .get(0);
            let (Some(exact), Some(estimate)) = (exact, stats.quantile(q)) else {
                panic!("{service} p{q}: no value");
            };
            let error = (estimate - f64::from(exact)).abs() / f64::from(exact).max(1.0);
            assert!(error <= 0.01, "{service} p{q}: {estimate} against {exact}");
        }
    }
    // A timeline in 5-minute buckets: every bucket there, each count exact.
    timeline_equals_sql(db, (from, until), 5, ("2026-11-24T00:05:00Z", 44));
    // Buckets of 90 minutes over two days: hour and minute tiles alternate, in more
    // stretches than are read one query each, so the cells between them must be left
    // out.
    let two_days = ("2026-11-23T00:00:00Z", "2026-11-25T00:00:00Z");
    timeline_equals_sql(db, two_days, 90, ("2026-11-23T00:00:00Z", 32));
    // A route pattern by status, over hours that start and end inside an hour.
    let (from, until) = ("2026-11-24T01:20:00Z", "2026-11-24T04:50:30Z");
    let mut routes = query(from, until);
    routes.filter.route = Some("/api/v1/orders*".into());
    routes.by = vec![Dimension::Status];
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
    errors.by = vec![Dimension::Level];
    assert_eq!(
        api_counts(&ask(db, &errors)),
        raw_counts(db, "l.level", "l.status BETWEEN 500 AND 599", from, until),
        "5xx by level"
    );
    let mut methods = query(from, until);
    methods.filter.services = vec!["payments".into()];
    methods.by = vec![Dimension::Method];
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
    // Per service and route (the route cells), and only two of those groups.
    let mut routes = query(from, until);
    routes.by = vec![Dimension::Service, Dimension::Route];
    let by_route = api_counts(&ask(db, &routes));
    assert_eq!(
        by_route,
        raw_counts(
            db,
            "s.service_name || ' ' || coalesce(l.route, '')",
            "true",
            from,
            until
        ),
        "per service and route"
    );
    let chosen: Vec<Vec<String>> = [&by_route[3], &by_route[40]]
        .iter()
        .map(|(label, _, _)| label.splitn(2, ' ').map(str::to_string).collect())
        .collect();
    routes.only = Some(chosen.iter().cloned().collect());
    assert_eq!(
        api_counts(&ask(db, &routes)),
        [by_route[3].clone(), by_route[40].clone()],
        "only two groups"
    );
    // Status classes of one service over minutes and hours (the service cells), counts
    // alone: no sketch is read.
    let (from, until) = ("2026-11-24T00:41:30Z", "2026-11-24T04:02:00Z");
    let mut classes = query(from, until);
    classes.filter.services = vec!["checkout".into()];
    classes.by = vec![Dimension::StatusClass];
    classes.latency = false;
    let answer = ask(db, &classes);
    assert_eq!(
        api_counts(&answer),
        raw_counts(
            db,
            "CASE WHEN l.status IS NULL THEN '' ELSE (l.status / 100)::text || 'xx' END",
            "s.service_name = 'checkout'",
            from,
            until
        ),
        "checkout by status class"
    );
    assert_eq!(answer.total().latency.count(), 0, "no sketch read");
    // Exact quantiles are percentile_disc's.
    classes.exact = true;
    classes.latency = true;
    classes.by = Vec::new();
    let exact = ask(db, &classes).total();
    assert!(exact.is_exact());
    for q in [0.5, 0.95, 0.99] {
        let expected: i32 = db.query(&format!(
            "SELECT percentile_disc({q}) WITHIN GROUP (ORDER BY latency_ms) \
             FROM log_events l JOIN services s USING (service_id) \
             WHERE s.service_name = 'checkout' AND created_at >= '{from}' AND created_at < '{until}'"
        ))[0]
            .get(0);
        assert_eq!(exact.quantile(q), Some(f64::from(expected)), "exact p{q}");
    }
}

#[test]
fn answers_equal_plain_sql_over_the_raw_rows() {
    let db = loaded_db("read_api");
    check_every_question(&db);
}

#[test]
fn answers_are_the_same_while_deltas_are_pending() {
    let db = TestDb::with_schema("read_api_pending");
    let mut holder = db.hold_rollup_lock();
    load_stretches(&db, "read_api_pending");
    assert!(db.count("SELECT count(*) FROM logctl_rollup_deltas") > 0);
    check_every_question(&db);
    holder.batch_execute("ROLLBACK").unwrap();
}
