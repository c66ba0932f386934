//! Synthetic NDJSON logs for tests, demos and benchmarks: realistic shapes and
//! latency distributions, byte-for-byte reproducible from a seed.

use std::fmt::Write as _;
use std::io::{self, Write};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub lines: u64,
    pub seed: u64,
    pub services: usize,
    /// Unix microseconds of the first line.
    pub start_unix_micros: i64,
    /// The average number of lines per second of log time.
    pub lines_per_second: u32,
}

const SERVICE_NAMES: [&str; 20] = [
    "api-gateway",
    "checkout",
    "payments",
    "inventory",
    "search",
    "auth",
    "notifications",
    "orders",
    "cart",
    "catalog",
    "recommendations",
    "shipping",
    "billing",
    "users",
    "reviews",
    "pricing",
    "media",
    "analytics",
    "email",
    "fraud-detection",
];

const RESOURCES: [&str; 12] = [
    "orders",
    "users",
    "carts",
    "products",
    "payments",
    "sessions",
    "invoices",
    "shipments",
    "reviews",
    "search",
    "coupons",
    "recommendations",
];

const REGIONS: [&str; 4] = ["eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-2"];

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
];

const BACKGROUND_MESSAGES: [(&str, &str); 6] = [
    ("info", "cache refreshed"),
    ("debug", "connection pool stats"),
    ("info", "scheduled job finished"),
    ("warn", "retrying upstream call"),
    ("error", "upstream call failed"),
    ("info", "config reloaded"),
];

/// Writes `options.lines` lines of NDJSON.
pub fn write(options: &GenOptions, out: &mut impl Write) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let services: Vec<String> = (0..options.services.max(1))
        .map(|i| match SERVICE_NAMES.get(i) {
            Some(name) => (*name).to_string(),
            None => format!(
                "{}-{}",
                SERVICE_NAMES[i % SERVICE_NAMES.len()],
                i / SERVICE_NAMES.len() + 1
            ),
        })
        .collect();
    let mut time = options.start_unix_micros;
    let mut line = String::with_capacity(1024);
    // Gaps drawn evenly below twice the mean gap.
    let widest_gap = (2_000_000 / i64::from(options.lines_per_second.max(1))).max(1);
    for _ in 0..options.lines {
        time += rng.random_range(0..widest_gap);
        line.clear();
        let service = &services[rng.random_range(0..services.len())];
        write_line(&mut line, &mut rng, service, time);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

fn write_line(line: &mut String, rng: &mut ChaCha8Rng, service: &str, unix_micros: i64) {
    let ts = chrono::DateTime::from_timestamp_micros(unix_micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let host = format!(
        "{service}-{:x}-{}",
        rng.random_range(0x1000..0xffffu32),
        rng.random_range(1..6)
    );
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    if rng.random_bool(0.12) {
        let (level, message) = BACKGROUND_MESSAGES[rng.random_range(0..BACKGROUND_MESSAGES.len())];
        let _ = write!(
            line,
            r#"{{"ts":"{ts}","service":"{service}","level":"{level}","msg":"{message}","metadata":{{"host":"{host}","region":"{region}","duration_ms":{},"items":{},"pid":{}}}}}"#,
            rng.random_range(1..5000),
            rng.random_range(0..10_000),
            rng.random_range(100..65_000),
        );
        return;
    }
    let resource = RESOURCES[rng.random_range(0..RESOURCES.len())];
    let (method, endpoint) = match rng.random_range(0..100) {
        0..=59 => (
            "GET",
            format!("/api/v1/{resource}/{}", rng.random_range(1..1_000_000)),
        ),
        60..=74 => ("GET", format!("/api/v1/{resource}")),
        75..=89 => ("POST", format!("/api/v1/{resource}")),
        90..=95 => (
            "PUT",
            format!("/api/v1/{resource}/{}", rng.random_range(1..1_000_000)),
        ),
        _ => (
            "DELETE",
            format!("/api/v1/{resource}/{}", rng.random_range(1..1_000_000)),
        ),
    };
    let latency = latency_ms(rng);
    let status = match rng.random_range(0..1000) {
        0..=899 => {
            if method == "POST" {
                201
            } else {
                200
            }
        }
        900..=929 => 204,
        930..=959 => 404,
        960..=974 => 400,
        975..=984 => 401,
        985..=989 => 429,
        990..=996 => 500,
        _ => 503,
    };
    let status = if latency > 5000 && rng.random_bool(0.3) {
        504
    } else {
        status
    };
    let level = match status {
        500.. => "error",
        400.. => "warn",
        _ => "info",
    };
    let request_id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let user = rng.random_range(1..500_000);
    let bytes_out = rng.random_range(120..250_000);
    let agent = USER_AGENTS[rng.random_range(0..USER_AGENTS.len())];
    let request = format!(
        r#""endpoint":"{endpoint}","method":"{method}","status":{status},"latency_ms":{latency}"#
    );
    let context = format!(
        r#""host":"{host}","region":"{region}","user_id":"u_{user}","bytes_out":{bytes_out},"user_agent":"{agent}""#
    );
    // Half the lines keep the request fields at the top level, half inside metadata.
    if rng.random_bool(0.5) {
        let _ = write!(
            line,
            r#"{{"ts":"{ts}","service":"{service}","level":"{level}","msg":"request completed","request_id":"{request_id}",{request},"metadata":{{{context}}}}}"#
        );
    } else {
        let _ = write!(
            line,
            r#"{{"timestamp":"{ts}","service":"{service}","level":"{level}","message":"{method} {endpoint} {status}","request_id":"{request_id}","metadata":{{{request},{context}}}}}"#
        );
    }
}

/// Log-normal around 45 ms, plus a slow mode (timeouts, lock waits) around 2.5 s:
/// about 2% of requests take over 2 s.
fn latency_ms(rng: &mut ChaCha8Rng) -> u32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let (median, spread) = if rng.random_bool(0.03) {
        (2500f64, 0.6)
    } else {
        (45f64, 0.9)
    };
    let latency = (median.ln() + spread * normal).exp();
    latency.clamp(1.0, 120_000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_at(seed: u64, lines: u64, lines_per_second: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write(
            &GenOptions {
                lines,
                seed,
                services: 20,
                start_unix_micros: 1_795_478_400_000_000,
                lines_per_second,
            },
            &mut out,
        )
        .unwrap();
        out
    }

    fn generate(seed: u64, lines: u64) -> Vec<u8> {
        generate_at(seed, lines, 50)
    }

    /// Seconds from the first line to the last.
    fn span_seconds(out: &[u8]) -> f64 {
        let times: Vec<chrono::DateTime<chrono::Utc>> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let value: serde_json::Value = serde_json::from_slice(line).unwrap();
                let ts = value.get("ts").or_else(|| value.get("timestamp"));
                ts.and_then(serde_json::Value::as_str)
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        (times[times.len() - 1] - times[0]).as_seconds_f64()
    }

    #[test]
    fn lines_follow_at_the_rate_asked() {
        let (at_50, at_5) = (generate_at(3, 5000, 50), generate_at(3, 5000, 5));
        assert!(
            (90.0..110.0).contains(&span_seconds(&at_50)),
            "{}",
            span_seconds(&at_50)
        );
        assert!(
            (900.0..1100.0).contains(&span_seconds(&at_5)),
            "{}",
            span_seconds(&at_5)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(generate(7, 200), generate(7, 200));
        assert_ne!(generate(7, 200), generate(8, 200));
    }

    #[test]
    fn lines_are_json_objects_with_some_slow_requests() {
        let out = generate(1, 5000);
        let mut slow = 0;
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            let latency = value
                .get("latency_ms")
                .or_else(|| value["metadata"].get("latency_ms"));
            if latency
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|l| l > 2000)
            {
                slow += 1;
            }
        }
        assert!(
            (20..500).contains(&slow),
            "{slow} slow requests in 5000 lines"
        );
        let average = out.len() / 5000;
        assert!(
            (250..450).contains(&average),
            "average line length {average}"
        );
    }
}
