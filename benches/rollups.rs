//! The rollups benchmark (`cargo bench --bench rollups`): starts a throwaway cluster,
//! generates and loads `LOGCTL_BENCH_ROWS` lines (1,000,000 by default; a small smoke
//! run under `cargo test`), then prints how much room the rollups take against the raw
//! table, and how long the read API takes to answer p50/p95/p99 per service over all of
//! it (the median of 21 answers, each on a fresh connection, as a report's would be).
//! With `LOGCTL_BENCH_URL` set it loads nothing and measures that database as it is (for
//! the 10 M-row one, which takes too long to load on every run).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Utc};
use logctl::analytics::read::{Dimension, Query, read};
use logctl::db::local::LocalInstance;

fn main() {
    if let Ok(url) = std::env::var("LOGCTL_BENCH_URL") {
        measure(&url);
        return;
    }
    let full = std::env::args().any(|arg| arg == "--bench");
    let lines: u64 = std::env::var("LOGCTL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let dir = std::env::temp_dir().join(format!("logctl-rollups-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = LocalInstance::at(dir.join("pg"));
    cluster.start().expect("start the benchmark cluster");
    let result = std::panic::catch_unwind(|| run(&cluster, &dir, lines));
    let _ = cluster.destroy();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(cluster: &LocalInstance, dir: &std::path::Path, lines: u64) {
    let logctl = env!("CARGO_BIN_EXE_logctl");
    let mut admin =
        postgres::Client::connect(&cluster.url_for("postgres"), postgres::NoTls).unwrap();
    admin.batch_execute("CREATE DATABASE rollups").unwrap();
    let url = cluster.url_for("rollups");
    let logs = dir.join("logs.ndjson");
    let status = Command::new(logctl)
        .args([
            "gen",
            "--lines",
            &lines.to_string(),
            "--seed",
            "11",
            "--output",
        ])
        .arg(&logs)
        .status()
        .unwrap();
    assert!(status.success());
    for args in [
        vec!["schema"],
        vec!["load", "--quiet", logs.to_str().unwrap()],
    ] {
        let status = Command::new(logctl)
            .args(&args)
            .args(["--database-url", &url])
            .status()
            .unwrap();
        assert!(status.success(), "logctl {args:?}");
    }
    std::fs::remove_file(&logs).unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client.batch_execute("VACUUM ANALYZE").unwrap();
    measure(&url);
}

fn measure(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let lines: i64 = client
        .query_one("SELECT count(*) FROM log_events", &[])
        .unwrap()
        .get(0);
    let mut size = |relation: &str| -> i64 {
        client
            .query_one(&format!("SELECT pg_total_relation_size('{relation}')"), &[])
            .unwrap()
            .get(0)
    };
    let raw = size("log_events");
    let (rollups, rows): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT sum(pg_total_relation_size(oid))::bigint, sum(reltuples)::bigint \
                 FROM pg_class WHERE relkind = 'r' AND relname LIKE 'logctl\\_rollup\\_%'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    println!(
        "{lines} lines: log_events {:.1} MiB with its indexes; rollups {:.2} MiB in about {rows} rows, {:.2}% of it",
        raw as f64 / 1048576.0,
        rollups as f64 / 1048576.0,
        100.0 * rollups as f64 / raw as f64
    );

    let (from, until): (DateTime<Utc>, DateTime<Utc>) = client
        .query_one(
            "SELECT min(minute), max(minute) + interval '1 minute' FROM logctl_rollup_total_minute",
            &[],
        )
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    let mut query = Query::new(
        from - chrono::TimeDelta::days(1),
        until + chrono::TimeDelta::days(1),
    );
    query.by = vec![Dimension::Service];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    let mut services = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let answer = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            read(&client, &query).await.unwrap()
        });
        let percentiles: Vec<[Option<f64>; 3]> = answer
            .by_group()
            .values()
            .map(|stats| [0.5, 0.95, 0.99].map(|q| stats.quantile(q)))
            .collect();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        services = percentiles.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "p50/p95/p99 per service ({services} services) over all {lines} rows through the read API: \
         median {:.1} ms (min {:.1}, max {:.1}) over 21 answers, a connection each",
        times[10], times[0], times[20]
    );
}
