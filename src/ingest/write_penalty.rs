//! The write penalty of indexes, measured on the user's own database: the same COPY
//! of generated rows into a scratch table with no index, then one index more at a time,
//! random (v4) against time-ordered (v7) keys, and a B-tree against BRIN on the time.

use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::encode::tuple as copy;
use super::encode::{LineEncoder, ParseOptions, ServiceIds, ShapeChoice};
use crate::synth::{self, GenOptions};

/// How long one configuration took to COPY the rows in, over repeated runs.
pub struct Measurement {
    pub configuration: &'static str,
    pub indexes: usize,
    /// The fastest run: the machine's other work only ever adds time.
    pub seconds: f64,
    /// How much slower the slowest run was than the fastest, as a fraction of it.
    pub spread: f64,
    /// Time beyond the copy into the table without indexes, as a fraction of it.
    pub cost_vs_no_index: f64,
    /// Whether that cost is larger than the spread of this configuration's runs and of
    /// the baseline's: a smaller one is noise, not a cost.
    pub beyond_noise: bool,
}

/// One measured configuration.
struct Scenario {
    name: &'static str,
    indexes: &'static [&'static str],
    random_keys: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "no index",
        indexes: &[],
        random_keys: false,
    },
    Scenario {
        name: "+ primary key (v7 keys)",
        indexes: &[PRIMARY_KEY],
        random_keys: false,
    },
    Scenario {
        name: "+ latency_ms B-tree",
        indexes: &[PRIMARY_KEY, LATENCY],
        random_keys: false,
    },
    Scenario {
        name: "+ created_at B-tree",
        indexes: &[PRIMARY_KEY, LATENCY, CREATED_BTREE],
        random_keys: false,
    },
    Scenario {
        name: "+ service_id B-tree",
        indexes: &[PRIMARY_KEY, LATENCY, CREATED_BTREE, SERVICE],
        random_keys: false,
    },
    Scenario {
        name: "+ request_id B-tree",
        indexes: &[PRIMARY_KEY, LATENCY, CREATED_BTREE, SERVICE, REQUEST],
        random_keys: false,
    },
    Scenario {
        name: "primary key, random v4 keys",
        indexes: &[PRIMARY_KEY],
        random_keys: true,
    },
    Scenario {
        name: "primary key + created_at B-tree",
        indexes: &[PRIMARY_KEY, CREATED_BTREE],
        random_keys: false,
    },
    Scenario {
        name: "primary key + created_at BRIN",
        indexes: &[PRIMARY_KEY, CREATED_BRIN],
        random_keys: false,
    },
    Scenario {
        name: "logctl's default set before the error lines' indexes",
        indexes: &[PRIMARY_KEY, LATENCY_PARTIAL, CREATED_BRIN],
        random_keys: false,
    },
    Scenario {
        name: "logctl's default set",
        indexes: &[
            PRIMARY_KEY,
            LATENCY_PARTIAL,
            CREATED_BRIN,
            ERROR_LINES,
            LONG_ERROR_LINES,
        ],
        random_keys: false,
    },
    Scenario {
        name: "logctl's default set + request-id index",
        indexes: &[
            PRIMARY_KEY,
            LATENCY_PARTIAL,
            CREATED_BRIN,
            ERROR_LINES,
            LONG_ERROR_LINES,
            REQUEST_PARTIAL,
        ],
        random_keys: false,
    },
];

const PRIMARY_KEY: &str = "ALTER TABLE events ADD PRIMARY KEY (event_id)";
const LATENCY: &str = "CREATE INDEX ON events (latency_ms)";
const LATENCY_PARTIAL: &str = "CREATE INDEX ON events (latency_ms) WHERE latency_ms IS NOT NULL";
const CREATED_BTREE: &str = "CREATE INDEX ON events (created_at)";
const CREATED_BRIN: &str = "CREATE INDEX ON events USING brin (created_at)";
const SERVICE: &str = "CREATE INDEX ON events (service_id)";
const REQUEST: &str = "CREATE INDEX ON events (request_id)";
/// The error lines' indexes of `logctl errors` (sql/008_error_lines.sql).
const ERROR_LINES: &str = "CREATE INDEX ON events (created_at) \
     INCLUDE (service_id, request_id, message) \
     WHERE (status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic')) \
     AND octet_length(message) <= 2000";
const LONG_ERROR_LINES: &str = "CREATE INDEX ON events (created_at) \
     WHERE (status >= 500 OR level IN ('error', 'fatal', 'critical', 'panic')) \
     AND (octet_length(message) <= 2000) IS NOT TRUE";
/// The opt-in index of `logctl schema --trace-index` (sql/trace_index.sql).
const REQUEST_PARTIAL: &str = "CREATE INDEX ON events (request_id) WHERE request_id IS NOT NULL";

/// Ids 1..=n for generated services; the scratch table has no foreign key.
struct NumberedServices(rustc_hash::FxHashMap<String, i32>);

impl ServiceIds for NumberedServices {
    fn id(&mut self, name: &str) -> i32 {
        let next = self.0.len() as i32 + 1;
        *self.0.entry(name.to_string()).or_insert(next)
    }
}

/// Runs every scenario in a scratch schema, which is dropped afterwards whatever happens.
pub async fn measure(client: &Client, rows: u64, runs: u32) -> crate::Result<Vec<Measurement>> {
    let (time_ordered, random) = encode_rows(rows)?;
    let schema = format!("logctl_write_penalty_{}", std::process::id());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.events (LIKE public.log_events INCLUDING DEFAULTS)"
        ))
        .await?;
    let result = run_scenarios(client, &schema, &time_ordered, &random, runs).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    result
}

async fn run_scenarios(
    client: &Client,
    schema: &str,
    time_ordered: &Bytes,
    random: &Bytes,
    runs: u32,
) -> crate::Result<Vec<Measurement>> {
    client
        .batch_execute(&format!("SET search_path = {schema}"))
        .await?;
    // One untimed round first (it pays for creating the files), then `runs` rounds per
    // configuration.
    copy_into_fresh_table(client, &SCENARIOS[0], time_ordered).await?;
    let mut measured = Vec::new();
    for scenario in SCENARIOS {
        let data = if scenario.random_keys {
            random
        } else {
            time_ordered
        };
        let (mut fastest, mut slowest) = (f64::INFINITY, 0f64);
        for _ in 0..runs.max(1) {
            let seconds = copy_into_fresh_table(client, scenario, data).await?;
            fastest = fastest.min(seconds);
            slowest = slowest.max(seconds);
        }
        measured.push((scenario, fastest, slowest / fastest - 1.0));
    }
    client.batch_execute("RESET search_path").await?;
    let (_, baseline, baseline_spread) = measured[0];
    Ok(measured
        .into_iter()
        .map(|(scenario, seconds, spread)| {
            let cost = seconds / baseline - 1.0;
            Measurement {
                configuration: scenario.name,
                indexes: scenario.indexes.len(),
                seconds,
                spread,
                cost_vs_no_index: cost,
                beyond_noise: cost.abs() > spread.max(baseline_spread),
            }
        })
        .collect())
}

/// Creates the scenario's table and indexes, and times one COPY of `data` into it.
async fn copy_into_fresh_table(
    client: &Client,
    scenario: &Scenario,
    data: &Bytes,
) -> crate::Result<f64> {
    client
        .batch_execute("DROP TABLE IF EXISTS events_copy; CREATE TABLE events_copy (LIKE events INCLUDING DEFAULTS)")
        .await?;
    for statement in scenario.indexes {
        client
            .batch_execute(&statement.replace(" events ", " events_copy "))
            .await?;
    }
    client
        .batch_execute("SELECT count(*) FROM events_copy")
        .await?;
    let started = Instant::now();
    let sink = client
        .copy_in(&format!(
            "COPY events_copy ({}) FROM STDIN (FORMAT binary)",
            copy::COLUMNS
        ))
        .await?;
    futures_util::pin_mut!(sink);
    sink.feed(Bytes::from_static(copy::HEADER)).await?;
    sink.feed(data.clone()).await?;
    sink.feed(Bytes::from_static(copy::TRAILER)).await?;
    sink.finish().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The same generated rows as binary COPY tuples, with time-ordered and with random keys.
fn encode_rows(rows: u64) -> crate::Result<(Bytes, Bytes)> {
    let mut lines = Vec::new();
    let options = GenOptions {
        lines: rows,
        seed: 7,
        services: 20,
        start_unix_micros: 1_795_478_400_000_000,
        lines_per_second: 50,
    };
    synth::write(&options, &mut lines)
        .map_err(|e| crate::Error::io("cannot generate the rows", e))?;
    let mut encoder = LineEncoder::new(ParseOptions {
        shape: ShapeChoice::new(None, &[], None).expect("the built-in shapes"),
        zone: Default::default(),
        nul: copy::NulPolicy::Reject,
        max_line_bytes: 1 << 20,
        routes: Default::default(),
    });
    let mut services = NumberedServices(Default::default());
    let mut time_ordered = Vec::with_capacity(lines.len());
    let mut starts = Vec::with_capacity(rows as usize);
    for line in lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        starts.push(time_ordered.len());
        encoder.encode(line, &mut services, &mut time_ordered);
    }
    // The key is the first field of each tuple: 2 bytes of field count, 4 of length.
    let mut random = time_ordered.clone();
    for start in starts {
        random[start + 6..start + 22].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    Ok((Bytes::from(time_ordered), Bytes::from(random)))
}
