//! The end-to-end load benchmark: one command (`cargo bench --bench end_to_end`)
//! starts a throwaway cluster at default settings, generates the logs, and on the same
//! run times `logctl load` against the server-side COPY of the same final rows and the
//! asyncpg reference pipeline, printing the ratios, the client's share of CPU and its
//! peak memory. Run by `cargo test` it does a small smoke run instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use logctl::db::local::LocalInstance;

struct Measured {
    seconds: f64,
    client_cpu: f64,
    server_cpu: f64,
    peak_rss_mib: f64,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let lines: u64 = std::env::var("LOGCTL_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 5_000 });
    let dir = std::env::temp_dir().join(format!("logctl-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dumps")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("dumps"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let cluster = LocalInstance::at(dir.join("pg"));
    cluster.start().expect("start the benchmark cluster");
    let result = std::panic::catch_unwind(|| run(&cluster, &dir, lines, full));
    let _ = cluster.destroy();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(cluster: &LocalInstance, dir: &Path, lines: u64, full: bool) {
    let logctl = env!("CARGO_BIN_EXE_logctl");
    let first = generate(logctl, dir, "day1.ndjson", lines, 1, "2026-11-24T00:00:00Z");
    let second = generate(logctl, dir, "day2.ndjson", lines, 2, "2026-11-25T00:00:00Z");
    // Flush the freshly written files now, not while the timed runs use the disk.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let megabytes = std::fs::metadata(&first).unwrap().len() as f64 / 1e6;
    println!(
        "{lines} lines, {megabytes:.0} MB per file, 2 cores, PostgreSQL at default settings (fsync on)"
    );

    // logctl into an empty default schema.
    let empty = database(cluster, "empty");
    let into_empty = measure(cluster, || Some(load(logctl, &empty, &first)));
    let services = dir.join("dumps/services.bin");
    sql(
        cluster,
        "empty",
        &format!("COPY services TO '{}' (FORMAT binary)", services.display()),
    );
    let day1 = dump(cluster, "empty", dir, "day1", "created_at < '2026-11-25'");
    let with_rows = |name: &str, rows: &[PathBuf]| {
        let url = database(cluster, name);
        sql(
            cluster,
            name,
            &format!(
                "COPY services FROM '{}' (FORMAT binary)",
                services.display()
            ),
        );
        server_copy(cluster, name, rows);
        url
    };

    // The server alone: COPY of the same final rows from server-side binary files.
    with_rows("server_one", &[]);
    let server_one = measure(cluster, || {
        server_copy(cluster, "server_one", std::slice::from_ref(&day1.whole))
    });
    with_rows("server_two", &[]);
    let server_two = measure(cluster, || server_copy(cluster, "server_two", &day1.halves));

    // Appending a second day to a table that holds the first.
    let append = with_rows("append", std::slice::from_ref(&day1.whole));
    let appended = measure(cluster, || Some(load(logctl, &append, &second)));
    let day2 = dump(cluster, "append", dir, "day2", "created_at >= '2026-11-25'");
    with_rows("server_append", std::slice::from_ref(&day1.whole));
    let server_append = measure(cluster, || {
        server_copy(cluster, "server_append", &day2.halves)
    });

    // The asyncpg reference, when Python has asyncpg and orjson.
    let asyncpg_url = database(cluster, "asyncpg");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/asyncpg_load.py");
    let asyncpg = python_has_asyncpg().then(|| {
        measure(cluster, || {
            let status = Command::new("python3")
                .arg(script)
                .arg(&asyncpg_url)
                .arg(&first)
                .status()
                .unwrap();
            assert!(status.success(), "the asyncpg pipeline failed");
            None
        })
    });

    for (name, url) in [("empty", &empty), ("append", &append)] {
        let rows = count(url);
        let expected = if name == "empty" { lines } else { 2 * lines };
        assert_eq!(rows, expected as i64, "{name}: every line loaded once");
    }

    println!();
    println!("| run | wall s | client CPU s | server CPU s | client share | client peak RSS |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, m: &Measured| {
        let share = m.client_cpu / (m.client_cpu + m.server_cpu).max(1e-9);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.0}% | {:.0} MiB |",
            m.seconds,
            m.client_cpu,
            m.server_cpu,
            share * 100.0,
            m.peak_rss_mib
        );
    };
    row("logctl load, empty table", &into_empty);
    row("server COPY, one stream, empty table", &server_one);
    row("server COPY, two streams, empty table", &server_two);
    if let Some(asyncpg) = &asyncpg {
        row("asyncpg pool + orjson, empty table", asyncpg);
    }
    row("logctl load, appending a day", &appended);
    row("server COPY, two streams, appending a day", &server_append);
    println!();
    if let Some(asyncpg) = &asyncpg {
        println!(
            "logctl / asyncpg (empty table): {:.2} (target <= 0.40)",
            into_empty.seconds / asyncpg.seconds
        );
    } else {
        println!("asyncpg not installed (pip install asyncpg orjson): its ratio is not measured");
    }
    println!(
        "logctl / two-stream server COPY (appending): {:.2} (target <= 1.15)",
        appended.seconds / server_append.seconds
    );
    println!(
        "logctl / two-stream server COPY (empty table): {:.2}",
        into_empty.seconds / server_two.seconds
    );
    many_services(cluster, dir, logctl, lines / 5);
    if !full {
        println!("(smoke run: pass --bench, as `cargo bench` does, for the full size)");
    }
}

/// The same number of request lines naming 20 services, and each naming a service of
/// its own: new service names are created in sets, one per batch, so the second costs a
/// small multiple of the first, not a round trip per name. Three alternating rounds,
/// each into a table with rows (the indexes kept, batch by batch).
fn many_services(cluster: &LocalInstance, dir: &Path, logctl: &str, lines: u64) {
    let write = |name: &str, services: u64| {
        let path = dir.join(name);
        let mut text = String::new();
        for i in 0..lines {
            text.push_str(&format!(
                "{{\"ts\":\"2026-11-24T{:02}:{:02}:{:02}.{:03}Z\",\"service\":\"svc-{:06}\",\"msg\":\"request {i}\",\"latency_ms\":{},\"endpoint\":\"/api/x\",\"method\":\"GET\",\"status\":200}}\n",
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i % 1000,
                i % services,
                i % 900 + 1,
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    };
    let few = write("few_services.ndjson", 20);
    let many = write("many_services.ndjson", lines);
    let mut seconds = [Vec::new(), Vec::new()];
    for round in 0..3 {
        for (which, file) in [&few, &many].into_iter().enumerate() {
            let url = database(cluster, &format!("services_{round}_{which}"));
            sql(
                cluster,
                &format!("services_{round}_{which}"),
                "INSERT INTO services (service_name) VALUES ('seed'); \
                 INSERT INTO log_events (event_id, service_id, created_at) \
                 SELECT gen_random_uuid(), service_id, now() FROM services",
            );
            seconds[which].push(measure(cluster, || Some(load(logctl, &url, file))).seconds);
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (few_median, many_median) = (median(&mut seconds[0]), median(&mut seconds[1]));
    println!();
    println!(
        "{lines} lines naming 20 services: {few_median:.2} s; each naming its own service: \
         {many_median:.2} s (medians of 3 alternating rounds); ratio {:.2} (target <= 3)",
        many_median / few_median
    );
}

fn generate(logctl: &str, dir: &Path, name: &str, lines: u64, seed: u64, start: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new(logctl)
        .args([
            "gen",
            "--lines",
            &lines.to_string(),
            "--seed",
            &seed.to_string(),
            "--start",
            start,
            "--output",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

/// A fresh database with the default schema; returns its URL.
fn database(cluster: &LocalInstance, name: &str) -> String {
    let mut admin =
        postgres::Client::connect(&cluster.url_for("postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let url = cluster.url_for(name);
    let status = Command::new(env!("CARGO_BIN_EXE_logctl"))
        .args(["schema", "--database-url", &url])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    url
}

/// Runs `logctl load` and returns its resource usage (reaped with wait4 for its rusage).
#[allow(clippy::zombie_processes)]
fn load(logctl: &str, url: &str, file: &Path) -> libc::rusage {
    let child = Command::new(logctl)
        .args(["load", "--quiet", "--database-url", url])
        .arg(file)
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "logctl load failed"
    );
    usage
}

/// Times a step, with the client's CPU and peak memory (when it ran logctl) and the
/// CPU of the server backends that exited meanwhile (every connection of the step).
fn measure(cluster: &LocalInstance, step: impl FnOnce() -> Option<libc::rusage>) -> Measured {
    // Start from a quiet machine: earlier steps' dirty pages written out, and their
    // backends exited (so their CPU is not counted here).
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let server_before = server_cpu_seconds(cluster);
    let started = Instant::now();
    let usage = step();
    let seconds = started.elapsed().as_secs_f64();
    // Backends are accounted to the postmaster once they exit; give them a moment to.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let server_cpu = server_cpu_seconds(cluster) - server_before;
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        seconds,
        client_cpu: usage.map_or(0.0, |u| cpu(u.ru_utime) + cpu(u.ru_stime)),
        server_cpu,
        peak_rss_mib: usage.map_or(0.0, |u| u.ru_maxrss as f64 / 1024.0),
    }
}

fn server_cpu_seconds(cluster: &LocalInstance) -> f64 {
    let pid_file = std::fs::read_to_string(cluster.root().join("data/postmaster.pid")).unwrap();
    let pid = pid_file.lines().next().unwrap().trim();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command name: field 14/15 are the waited-for children's utime/stime.
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

struct Dump {
    whole: PathBuf,
    halves: Vec<PathBuf>,
}

/// Writes the rows matching `filter` to server-side binary COPY files: all of them, and in two halves.
fn dump(cluster: &LocalInstance, database: &str, dir: &Path, name: &str, filter: &str) -> Dump {
    let mut client =
        postgres::Client::connect(&cluster.url_for(database), postgres::NoTls).unwrap();
    let file = |suffix: &str| dir.join("dumps").join(format!("{name}{suffix}.bin"));
    let columns = "event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata";
    let select = |extra: &str| format!("SELECT {columns} FROM log_events WHERE {filter} {extra}");
    let median: uuid::Uuid = client
        .query_one(&format!("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY event_id) FROM log_events WHERE {filter}"), &[])
        .unwrap()
        .get(0);
    for (suffix, extra) in [
        ("", String::new()),
        ("-a", format!("AND event_id < '{median}'")),
        ("-b", format!("AND event_id >= '{median}'")),
    ] {
        client
            .batch_execute(&format!(
                "COPY ({}) TO '{}' (FORMAT binary)",
                select(&extra),
                file(suffix).display()
            ))
            .unwrap();
    }
    Dump {
        whole: file(""),
        halves: vec![file("-a"), file("-b")],
    }
}

fn sql(cluster: &LocalInstance, database: &str, statement: &str) {
    let mut client =
        postgres::Client::connect(&cluster.url_for(database), postgres::NoTls).unwrap();
    client.batch_execute(statement).unwrap();
}

/// COPY from server-side files, one connection per file, in parallel.
fn server_copy(cluster: &LocalInstance, database: &str, files: &[PathBuf]) -> Option<libc::rusage> {
    let url = cluster.url_for(database);
    std::thread::scope(|scope| {
        for file in files {
            let url = url.clone();
            scope.spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!(
                        "COPY log_events (event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata) FROM '{}' (FORMAT binary)",
                        file.display()
                    ))
                    .unwrap();
            });
        }
    });
    None
}

fn count(url: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .query_one("SELECT count(*) FROM log_events", &[])
        .unwrap()
        .get(0)
}

fn python_has_asyncpg() -> bool {
    Command::new("python3")
        .args(["-c", "import asyncpg, orjson"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
