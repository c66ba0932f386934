//! A month of rollups (issue 13; `cargo bench --bench month`): fills the database at
//! `LOGCTL_BENCH_URL` with the rollups of a 1 B-row month, then times the analytics
//! reports on it as whole processes, and prints the rollup tables' sizes.
//!
//! The month is 30 days up to the current minute (so that `--since 30d` covers it),
//! 20 services and 2,000 routes (100 per service, a fifth of them with a second method),
//! `MONTH_EVENTS_PER_DAY` events a day (33,333,334 by default) in a daily rhythm, spread
//! over the routes by a Zipf law, with a mix of statuses and levels per method and a
//! lognormal latency per route (a few slow routes, a few flaky ones, timeouts at 30 s).
//! No raw row is written: each event is drawn and counted straight into the cells of its
//! minute and its hour (`rollup::Cells`, whose keys and measures the loader fills), each
//! service-day is written as a delta through the loader's own `compact::append_deltas`,
//! and `compact::compact` folds it into every grain. So the tables are what loading
//! the month would leave, whatever their layout becomes. `log_events` stays empty, so
//! the parts of a window that the rollups cannot answer (a part of an hour when a
//! report needs routes) cost nothing here; they would on a real month.
//!
//! A filled database is kept: a second run only tops it up with the minutes since its
//! newest one (so that windows ending now find the month's newest data, as they would
//! with loads from cron), then times (`MONTH_REFILL=1` empties the rollups and fills
//! them again, as after an interrupted fill).
//! `RUNS` (default 11) runs of each command are timed in turn, after one untimed run,
//! and their medians printed.
//!
//! Under `cargo test` (no `--bench`), a smoke run fills one small day into a throwaway
//! cluster, checks that the grains add up to the events drawn, and runs each command once.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use chrono::Utc;
use logctl::analytics::compact::{Wait, append_deltas, compact};
use logctl::analytics::rollup::{
    Cells, DAY, Delta, Grain, HOUR, HourKey, MINUTE, Measures, MinuteKey, bucket_of, is_error,
    status_class,
};
use logctl::db::local::LocalInstance;
use logctl::pgtime::from_datetime;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_postgres::{Client, NoTls};

/// How big a month to fill.
#[derive(Debug, Clone, Copy)]
struct Shape {
    days: i64,
    services: usize,
    routes_per_service: usize,
    events_per_day: u64,
}

/// The reports timed, after `logctl` and before `--database-url`.
const COMMANDS: [&[&str]; 5] = [
    &["summary", "--since", "30d"],
    &["top", "routes", "--by", "p99", "--since", "24h"],
    &["timeline", "--since", "30d"],
    &["latency", "--since", "30d"],
    &["check", "--since", "15m", "--fail-if", "p99 > 2000"],
];

fn main() -> Result<()> {
    if !std::env::args().any(|arg| arg == "--bench") {
        return smoke();
    }
    let url = std::env::var("LOGCTL_BENCH_URL").context(
        "set LOGCTL_BENCH_URL to the database to fill and measure, e.g. \
         LOGCTL_BENCH_URL=$(LOGCTL_LOCAL_DIR=/path/to/pg logctl local url)",
    )?;
    let shape = Shape {
        days: 30,
        services: 20,
        routes_per_service: 100,
        events_per_day: number("MONTH_EVENTS_PER_DAY", 33_333_334)?,
    };
    let runs = number("RUNS", 11)? as usize;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = connect(&url).await?;
        let schema: bool = client
            .query_one(
                "SELECT to_regclass('logctl_rollup_total_minute') IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        let filled = schema
            && client
                .query_one(
                    "SELECT EXISTS (SELECT FROM logctl_rollup_total_minute)",
                    &[],
                )
                .await?
                .get::<_, bool>(0);
        if filled && std::env::var("MONTH_REFILL").as_deref() != Ok("1") {
            println!(
                "the rollups are filled already: timing them (MONTH_REFILL=1 fills them again)"
            );
        } else {
            fill(&client, &url, shape).await?;
        }
        top_up(&client, shape).await?;
        describe(&client).await
    })?;
    time_reports(&url, runs)
}

/// One small day in a throwaway cluster, each command run once.
fn smoke() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("month-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let cluster = LocalInstance::at(dir.join("pg"));
    cluster.start()?;
    let result = (|| {
        let mut admin = postgres::Client::connect(&cluster.url_for("postgres"), postgres::NoTls)?;
        admin.batch_execute("CREATE DATABASE month")?;
        let url = cluster.url_for("month");
        let shape = Shape {
            days: 1,
            services: 2,
            routes_per_service: 10,
            events_per_day: 50_000,
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let client = connect(&url).await?;
                fill(&client, &url, shape).await?;
                describe(&client).await
            })?;
        time_reports(&url, 1)
    })();
    let _ = cluster.destroy();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(text) => text.parse().with_context(|| format!("{name}={text}")),
        Err(_) => Ok(default),
    }
}

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Every table the rollups live in.
fn rollup_tables() -> Vec<&'static str> {
    let mut tables = Grain::ALL.map(Grain::table).to_vec();
    tables.extend(
        Grain::ALL
            .into_iter()
            .filter(|grain| grain.packs_detail())
            .map(Grain::detail_table),
    );
    tables.push("logctl_rollup_deltas");
    tables
}

/// Creates the schema, empties the rollups, and fills them with `shape`'s month up to
/// the current minute: the cells are drawn on a thread of their own, a service-day at a
/// time, while this one appends each as a delta and compacts it.
async fn fill(client: &Client, url: &str, shape: Shape) -> Result<()> {
    let status = Command::new(env!("CARGO_BIN_EXE_logctl"))
        .args(["schema", "--database-url", url])
        .status()?;
    ensure!(status.success(), "logctl schema failed");
    client
        .batch_execute(&format!("TRUNCATE {}", rollup_tables().join(", ")))
        .await?;
    let month = Month::new(shape);
    let ids = service_ids(client, &month).await?;
    let end = bucket_of(from_datetime(Utc::now()), MINUTE) + MINUTE;
    let start = end - shape.days * DAY;
    println!(
        "filling {} days x {} services x {} routes, {} events a day, up to {}",
        shape.days,
        shape.services,
        shape.services * shape.routes_per_service,
        shape.events_per_day,
        logctl::pgtime::to_datetime(end)
    );
    let started = Instant::now();
    let (send, receive) = mpsc::sync_channel::<(Delta, u64)>(2);
    let drawing = std::thread::spawn(move || {
        for day in 0..shape.days {
            for (service, &id) in month.services.iter().zip(&ids) {
                let from = start + day * DAY;
                let seed = (day as u64) << 16 | id as u64;
                let (cells, events) = month.draw(service, id, from, from + DAY, seed);
                let deltas = cells.deltas();
                assert_eq!(deltas.len(), 1, "a service-day's cells are one service's");
                for delta in deltas {
                    if send.send((delta, events)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (mut events, mut written, mut bytes) = (0u64, 0u64, 0usize);
    let mut compacting = std::time::Duration::ZERO;
    for (delta, drawn) in receive {
        append_deltas(client, std::slice::from_ref(&delta), 0).await?;
        let folding = Instant::now();
        compact(client, None, Wait::Yes).await?;
        compacting += folding.elapsed();
        events += drawn;
        written += 1;
        bytes += delta.cells.len();
        if written % shape.services as u64 == 0 {
            println!(
                "  day {:>2}: {events} events so far, {:.0} s ({:.0} s compacting)",
                written / shape.services as u64,
                started.elapsed().as_secs_f64(),
                compacting.as_secs_f64()
            );
        }
    }
    if drawing.join().is_err() {
        bail!("drawing the cells failed");
    }
    client.batch_execute("VACUUM ANALYZE").await?;
    println!(
        "filled in {:.0} s ({:.0} s compacting): {events} events in {written} deltas of {:.0} MiB",
        started.elapsed().as_secs_f64(),
        compacting.as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    // Every grain counts every event once.
    for table in Grain::ALL.map(Grain::table) {
        let counted: i64 = client
            .query_one(&format!("SELECT sum(events)::bigint FROM {table}"), &[])
            .await?
            .get(0);
        ensure!(
            counted as u64 == events,
            "{table} counts {counted} events of {events}"
        );
    }
    Ok(())
}

/// The ids of the month's services, created when missing.
async fn service_ids(client: &Client, month: &Month) -> Result<Vec<i32>> {
    let mut ids = Vec::new();
    for service in &month.services {
        let row = client
            .query_one(
                "INSERT INTO services (service_name) VALUES ($1) ON CONFLICT (service_name) \
                 DO UPDATE SET service_name = excluded.service_name RETURNING service_id",
                &[&service.name],
            )
            .await?;
        ids.push(row.get(0));
    }
    Ok(ids)
}

/// Draws the minutes after the newest one the rollups hold, up to the current one, a
/// day at a time, as the loads from cron would have: windows that end now (`--since`)
/// then find the month's newest data, however long the fill or the pause since took.
async fn top_up(client: &Client, shape: Shape) -> Result<()> {
    let newest: chrono::DateTime<Utc> = client
        .query_one("SELECT max(minute) FROM logctl_rollup_total_minute", &[])
        .await?
        .get(0);
    let until = bucket_of(from_datetime(Utc::now()), MINUTE) + MINUTE;
    let month = Month::new(shape);
    let ids = service_ids(client, &month).await?;
    let mut from = from_datetime(newest) + MINUTE;
    while from < until {
        let end = (from + DAY).min(until);
        for (service, &id) in month.services.iter().zip(&ids) {
            let (cells, _) = month.draw(service, id, from, end, from as u64 ^ id as u64);
            append_deltas(client, &cells.deltas(), 0).await?;
        }
        compact(client, None, Wait::Yes).await?;
        println!(
            "topped up {} minutes, to {}",
            (end - from) / MINUTE,
            logctl::pgtime::to_datetime(end)
        );
        from = end;
    }
    Ok(())
}

/// The cell counts and sizes of the rollup tables, and how old the newest minute is.
async fn describe(client: &Client) -> Result<()> {
    println!("\n{:<28} {:>12} {:>10}", "table", "cells", "MiB");
    let mut total = 0;
    for table in rollup_tables() {
        let row = client
            .query_one(
                &format!("SELECT count(*), pg_total_relation_size('{table}') FROM {table}"),
                &[],
            )
            .await?;
        let (cells, size): (i64, i64) = (row.get(0), row.get(1));
        total += size;
        println!("{table:<28} {cells:>12} {:>10.1}", size as f64 / 1048576.0);
    }
    let row = client
        .query_one(
            "SELECT (SELECT sum(events)::bigint FROM logctl_rollup_service_day), \
                    (max(minute) + interval '1 minute')::text, now()::text FROM logctl_rollup_total_minute",
            &[],
        )
        .await?;
    let events: Option<i64> = row.get(0);
    println!(
        "{:<28} {:>12} {:>10.1}\n{} events, up to {} (now: {})",
        "all",
        "",
        total as f64 / 1048576.0,
        events.unwrap_or(0),
        row.get::<_, Option<String>>(1).unwrap_or_default(),
        row.get::<_, String>(2)
    );
    Ok(())
}

/// Times each command as a whole process, `runs` times in turn after an untimed run.
fn time_reports(url: &str, runs: usize) -> Result<()> {
    let logctl = env!("CARGO_BIN_EXE_logctl");
    let run = |args: &[&str]| -> Result<f64> {
        let started = Instant::now();
        let output = Command::new(logctl)
            .args(args)
            .args(["--database-url", url])
            .output()?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        // 7 is a breached check, which is an answer.
        if !matches!(output.status.code(), Some(0 | 7)) {
            bail!(
                "logctl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(elapsed)
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); COMMANDS.len()];
    for args in COMMANDS {
        run(args)?;
    }
    for _ in 0..runs {
        for (args, times) in COMMANDS.iter().zip(&mut times) {
            times.push(run(args)?);
        }
    }
    println!("\n{runs} runs each, whole processes, in turn:");
    println!("{:>10} {:>10} {:>10}  command", "median ms", "min", "max");
    for (args, times) in COMMANDS.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        println!(
            "{:>10.0} {:>10.0} {:>10.0}  logctl {}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            args.join(" ")
        );
    }
    Ok(())
}

/// What a request can end as: its status (none for a background job), its level, its
/// share of a series' requests, and its latency.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    status: Option<i16>,
    level: &'static str,
    share: f64,
    latency: Latency,
}

#[derive(Debug, Clone, Copy)]
enum Latency {
    /// The series' latency times this.
    Scaled(f64),
    /// Around 30 s: a gateway timeout.
    Timeout,
    /// None: a log line without a duration.
    Absent,
}

/// A route and method of a service, as the rollups key them.
#[derive(Debug, Clone)]
struct Series {
    route: Option<String>,
    method: Option<&'static str>,
    /// Of its service's events.
    share: f64,
    /// Lognormal latency: the median in ms and the shape.
    median: f64,
    sigma: f64,
    outcomes: Vec<Outcome>,
}

#[derive(Debug, Clone)]
struct Service {
    name: String,
    /// Of all events.
    share: f64,
    series: Vec<Series>,
}

/// The month's services and series, drawn once from a fixed seed.
struct Month {
    shape: Shape,
    services: Vec<Service>,
}

const SERVICES: [&str; 20] = [
    "gateway",
    "auth",
    "users",
    "catalog",
    "search",
    "cart",
    "checkout",
    "payments",
    "orders",
    "inventory",
    "shipping",
    "notifications",
    "reviews",
    "recommendations",
    "pricing",
    "media",
    "analytics",
    "billing",
    "support",
    "admin",
];

const RESOURCES: [&str; 25] = [
    "orders",
    "users",
    "items",
    "carts",
    "payments",
    "invoices",
    "products",
    "reviews",
    "sessions",
    "tokens",
    "addresses",
    "shipments",
    "refunds",
    "coupons",
    "images",
    "reports",
    "tickets",
    "accounts",
    "prices",
    "stocks",
    "events",
    "jobs",
    "exports",
    "webhooks",
    "plans",
];

impl Month {
    fn new(shape: Shape) -> Month {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let weights: Vec<f64> = (0..shape.services)
            .map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.6))
            .collect();
        let total: f64 = weights.iter().sum();
        let services = (0..shape.services)
            .map(|index| Service {
                name: match SERVICES.get(index) {
                    Some(name) => name.to_string(),
                    None => format!("service-{index}"),
                },
                share: weights[index] / total,
                series: series_of(&mut rng, index, shape.routes_per_service),
            })
            .collect();
        Month { shape, services }
    }

    /// The cells of one service's events in [from, until), minute-aligned, and how many
    /// events they count. Each event is drawn: its minute, its outcome and its latency.
    fn draw(
        &self,
        service: &Service,
        service_id: i32,
        from: i64,
        until: i64,
        seed: u64,
    ) -> (Cells, u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let per_minute = self.shape.events_per_day as f64 / 1440.0 * service.share;
        // (status class, level) of the minute cells, in first-seen order.
        let mut classes: Vec<(i16, &str)> = Vec::new();
        let class_of: Vec<Vec<usize>> = service
            .series
            .iter()
            .map(|series| {
                series
                    .outcomes
                    .iter()
                    .map(|outcome| {
                        let class = (status_class(outcome.status), outcome.level);
                        classes.iter().position(|&c| c == class).unwrap_or_else(|| {
                            classes.push(class);
                            classes.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let mut cells = Cells::default();
        let mut events = 0;
        let mut hour = bucket_of(from, HOUR);
        while hour < until {
            let first = hour.max(from);
            let minutes = ((hour + HOUR).min(until) - first) / MINUTE;
            let hour_of_day = (hour.rem_euclid(DAY) / HOUR) as f64;
            // Busiest at 14:00 UTC, quietest at 02:00; a mean of 1 over the day.
            let rhythm = 1.0 + 0.5 * (std::f64::consts::TAU * (hour_of_day - 8.0) / 24.0).sin();
            let mut minute_cells = vec![Measures::default(); minutes as usize * classes.len()];
            for (series, class_of) in service.series.iter().zip(&class_of) {
                let expected = per_minute * rhythm * series.share * minutes as f64;
                let count = (expected * rng.random_range(0.9..1.1) + rng.random::<f64>()) as u64;
                let mut hour_cells = vec![Measures::default(); series.outcomes.len()];
                for event in 0..count {
                    let minute = (event * minutes as u64 / count) as usize;
                    let mut pick = rng.random::<f64>();
                    let which = series
                        .outcomes
                        .iter()
                        .position(|outcome| {
                            pick -= outcome.share;
                            pick < 0.0
                        })
                        .unwrap_or(0);
                    let outcome = series.outcomes[which];
                    let latency = match outcome.latency {
                        Latency::Scaled(factor) => {
                            Some(lognormal(&mut rng, series.median * factor, series.sigma))
                        }
                        Latency::Timeout => Some(lognormal(&mut rng, 30_000.0, 0.02)),
                        Latency::Absent => None,
                    };
                    let error = is_error(outcome.status, Some(outcome.level));
                    for cell in [
                        &mut hour_cells[which],
                        &mut minute_cells[minute * classes.len() + class_of[which]],
                    ] {
                        cell.events += 1;
                        cell.errors += u64::from(error);
                        if let Some(latency) = latency {
                            cell.latency.add(latency);
                        }
                    }
                }
                events += count;
                for (outcome, measures) in series.outcomes.iter().zip(hour_cells) {
                    if measures.events > 0 {
                        let key = HourKey {
                            start: hour,
                            service_id,
                            route: series.route.as_deref().unwrap_or("").into(),
                            method: series.method.unwrap_or("").into(),
                            status: outcome.status.unwrap_or(0),
                            level: outcome.level.into(),
                        };
                        cells.hours.entry(key).or_default().merge(&measures);
                    }
                }
            }
            for (slot, measures) in minute_cells.into_iter().enumerate() {
                if measures.events > 0 {
                    let (class, level) = classes[slot % classes.len()];
                    let key = MinuteKey {
                        minute: first + (slot / classes.len()) as i64 * MINUTE,
                        service_id,
                        status_class: class,
                        level: level.into(),
                    };
                    cells.minutes.insert(key, measures);
                }
            }
            hour += HOUR;
        }
        (cells, events)
    }
}

/// A service's series: `routes` routes, a fifth of them with a second method, and a
/// series of background work without a route; shares by a Zipf law over the routes.
fn series_of(rng: &mut ChaCha8Rng, service: usize, routes: usize) -> Vec<Series> {
    const SHAPES: [(&str, &str); 4] = [
        ("", "GET"),
        ("/:id", "GET"),
        ("/:id/items", "GET"),
        ("/:id/status", "PUT"),
    ];
    let mut series = Vec::new();
    let weights: Vec<f64> = (0..routes)
        .map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.9))
        .collect();
    let total: f64 = weights.iter().sum::<f64>() / 0.96;
    for (index, weight) in weights.iter().enumerate() {
        let resource = RESOURCES[(index + service * 7) % RESOURCES.len()];
        let (suffix, method) = SHAPES[index / RESOURCES.len() % SHAPES.len()];
        let route = format!("/api/v{}/{resource}{suffix}", 1 + index / 100);
        let slow = index % 33 == 5;
        let flaky = index % 41 == 7;
        let median = if slow {
            rng.random_range(400.0..1500.0)
        } else {
            (12.0 * (rng.random_range(-1.0..1.5f64)).exp()).max(2.0)
        };
        let sigma = rng.random_range(0.45..0.9);
        let methods: &[(&'static str, f64)] = if index % 5 == 2 {
            &[(method, 0.8), ("POST", 0.2)]
        } else {
            &[(method, 1.0)]
        };
        for &(method, part) in methods {
            series.push(Series {
                route: Some(route.clone()),
                method: Some(method),
                share: weight / total * part,
                median,
                sigma,
                outcomes: http_outcomes(method, flaky),
            });
        }
    }
    series.push(Series {
        route: None,
        method: None,
        share: 0.04,
        median: 150.0,
        sigma: 1.2,
        outcomes: normalised(vec![
            outcome(None, "info", 0.6, Latency::Scaled(1.0)),
            outcome(None, "info", 0.2, Latency::Absent),
            outcome(None, "debug", 0.1, Latency::Absent),
            outcome(None, "warn", 0.07, Latency::Scaled(2.0)),
            outcome(None, "error", 0.03, Latency::Scaled(3.0)),
        ]),
    });
    series
}

fn outcome(status: Option<i16>, level: &'static str, share: f64, latency: Latency) -> Outcome {
    Outcome {
        status,
        level,
        share,
        latency,
    }
}

/// The statuses and levels of a route's requests.
fn http_outcomes(method: &str, flaky: bool) -> Vec<Outcome> {
    let ok = if method == "POST" { 201 } else { 200 };
    let server_errors = if flaky { 10.0 } else { 1.0 };
    let http = |status: i16, level, share, latency| outcome(Some(status), level, share, latency);
    normalised(vec![
        http(ok, "info", 0.93, Latency::Scaled(1.0)),
        http(ok, "debug", 0.02, Latency::Scaled(1.0)),
        http(304, "info", 0.01, Latency::Scaled(0.4)),
        http(400, "warn", 0.008, Latency::Scaled(0.3)),
        http(401, "warn", 0.005, Latency::Scaled(0.2)),
        http(403, "warn", 0.002, Latency::Scaled(0.2)),
        http(404, "warn", 0.012, Latency::Scaled(0.3)),
        http(429, "warn", 0.002, Latency::Scaled(0.1)),
        http(500, "error", 0.0025 * server_errors, Latency::Scaled(1.5)),
        http(502, "error", 0.0005 * server_errors, Latency::Scaled(0.2)),
        http(503, "error", 0.0008 * server_errors, Latency::Scaled(0.1)),
        http(504, "error", 0.0002 * server_errors, Latency::Timeout),
    ])
}

fn normalised(mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
    let total: f64 = outcomes.iter().map(|outcome| outcome.share).sum();
    for outcome in &mut outcomes {
        outcome.share /= total;
    }
    outcomes
}

/// A lognormal latency in whole ms (Box-Muller for the normal).
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> i32 {
    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    let normal = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
    (median * (sigma * normal).exp())
        .round()
        .min(i32::MAX as f64) as i32
}
