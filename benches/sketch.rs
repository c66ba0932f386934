//! Criterion benches of the per-line analytics work on one core: adding a latency to a
//! sketch, merging, encoding, decoding and reading one, templating an endpoint into a
//! route (with and without user rules), and the route cap's check of a known route.
//! The inputs are the latencies and endpoints of generated logs. Times are the thread's
//! CPU time: the machine is shared, and wall time would count the time this thread waits
//! for a core.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logctl::analytics::routes::{RouteCap, RouteRule, RouteTemplater};
use logctl::analytics::sketch::Sketch;
use logctl::synth::{GenOptions, write};
use serde_json::Value;

/// (service, endpoint, latency) of each request line of 20,000 generated lines.
fn generated_requests() -> Vec<(String, String, i32)> {
    let mut logs = Vec::new();
    let options = GenOptions {
        lines: 20_000,
        seed: 42,
        services: 20,
        start_unix_micros: 1_795_478_400_000_000,
        lines_per_second: 50,
    };
    write(&options, &mut logs).expect("generate");
    logs.split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let event: Value = serde_json::from_slice(line).expect("generated JSON");
            let field = |name: &str| event.get(name).or_else(|| event["metadata"].get(name));
            Some((
                event["service"].as_str()?.to_string(),
                field("endpoint")?.as_str()?.to_string(),
                i32::try_from(field("latency_ms")?.as_i64()?).ok()?,
            ))
        })
        .collect()
}

/// Paths of the shapes real logs hold, beside the generated ones.
const REAL_WORLD_PATHS: [&str; 8] = [
    "/api/v1/orders/762246/items/3?expand=product",
    "https://shop.example.com/users/3fa85f64-5717-4562-b3fc-2c963f66afa6/profile",
    "/static/js/main.3f2a9c1b.chunk.js",
    "/reports/2026-11-24T08:00:00Z/summary",
    "/repos/logctl/commit/9fceb02d0ae598e95dc970b74767f19372d61af8",
    "/api/v2beta1/namespaces/default/pods",
    "/health",
    "/users/jane.doe%40example.com/orders/",
];

/// Criterion's measurement of the CPU time the benchmarking thread used, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_nanoseconds() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread CPU clock is readable");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanoseconds()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanoseconds() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Times in ns, µs or ms, and throughputs as the CPU time per element or byte.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            _ => (1e6, "ms"),
        };
        values.iter_mut().for_each(|value| *value /= divisor);
        unit
    }

    fn scale_throughputs(
        &self,
        _: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (count, unit) = match *throughput {
            Throughput::Elements(elements) | Throughput::ElementsAndBytes { elements, .. } => {
                (elements, "ns/element")
            }
            Throughput::Bytes(bytes) | Throughput::BytesDecimal(bytes) => (bytes, "ns/byte"),
            Throughput::Bits(bits) => (bits, "ns/bit"),
        };
        values.iter_mut().for_each(|value| *value /= count as f64);
        unit
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn sketch_benches(c: &mut Criterion<ThreadCpuTime>, latencies: &[i32]) {
    let mut group = c.benchmark_group("sketch");
    group.throughput(Throughput::Elements(latencies.len() as u64));
    group.bench_function("add", |b| {
        b.iter(|| {
            let mut sketch = Sketch::new();
            for &latency in latencies {
                sketch.add(black_box(latency));
            }
            sketch
        })
    });

    // A rollup cell: a few thousand requests of one series.
    let cell: Sketch = latencies[..5_000].iter().copied().collect();
    let other: Sketch = latencies[5_000..10_000].iter().copied().collect();
    let mut bytes = Vec::new();
    cell.encode(&mut bytes);
    eprintln!(
        "a cell of 5,000 generated latencies encodes to {} bytes",
        bytes.len()
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("merge_cell", |b| {
        b.iter_batched_ref(
            || cell.clone(),
            |sketch| sketch.merge(black_box(&other)),
            BatchSize::SmallInput,
        )
    });
    // A timeline bucket: 100 minute cells of 150 requests each, merged from their bytes
    // as the read API receives them.
    let minute_cells: Vec<Vec<u8>> = latencies
        .chunks(150)
        .take(100)
        .map(|chunk| {
            let mut bytes = Vec::new();
            chunk.iter().copied().collect::<Sketch>().encode(&mut bytes);
            bytes
        })
        .collect();
    group.bench_function("merge_100_encoded_minute_cells", |b| {
        b.iter(|| {
            let mut sketch = Sketch::new();
            for bytes in &minute_cells {
                sketch.merge_encoded(black_box(bytes)).expect("valid");
            }
            sketch
        })
    });
    group.bench_function("encode_cell", |b| {
        let mut out = Vec::with_capacity(bytes.len());
        b.iter(|| {
            out.clear();
            black_box(&cell).encode(&mut out);
            out.len()
        })
    });
    group.bench_function("decode_cell", |b| {
        b.iter(|| Sketch::decode(black_box(&bytes)).expect("valid"))
    });
    group.bench_function("p99_of_cell", |b| {
        b.iter(|| black_box(&cell).quantile(black_box(0.99)))
    });
    group.finish();
}

fn route_benches(c: &mut Criterion<ThreadCpuTime>, requests: &[(String, String, i32)]) {
    let endpoints: Vec<&str> = requests
        .iter()
        .map(|(_, endpoint, _)| endpoint.as_str())
        .chain(REAL_WORLD_PATHS)
        .collect();
    let mut group = c.benchmark_group("routes");
    group.throughput(Throughput::Elements(endpoints.len() as u64));
    let defaults = RouteTemplater::default();
    group.bench_function("template", |b| {
        b.iter(|| {
            endpoints
                .iter()
                .map(|endpoint| defaults.template(black_box(endpoint)).len())
                .sum::<usize>()
        })
    });
    let rules = ["/rest/api/*/issue/:key", "/users/:user/**", "/static/**"]
        .map(|rule| rule.parse::<RouteRule>().expect("valid rule"));
    let with_rules = RouteTemplater::new(rules.to_vec());
    group.bench_function("template_with_3_rules", |b| {
        b.iter(|| {
            endpoints
                .iter()
                .map(|endpoint| with_rules.template(black_box(endpoint)).len())
                .sum::<usize>()
        })
    });

    let routed: Vec<(&str, String)> = requests
        .iter()
        .map(|(service, endpoint, _)| (service.as_str(), defaults.template(endpoint).into_owned()))
        .collect();
    let mut cap = RouteCap::default();
    for (service, route) in &routed {
        cap.admit(service, route);
    }
    group.throughput(Throughput::Elements(routed.len() as u64));
    group.bench_function("cap_known_route", |b| {
        b.iter(|| {
            routed
                .iter()
                .map(|(service, route)| cap.admit(black_box(service), black_box(route)).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion<ThreadCpuTime>) {
    let requests = generated_requests();
    let latencies: Vec<i32> = requests.iter().map(|&(_, _, latency)| latency).collect();
    sketch_benches(c, &latencies);
    route_benches(c, &requests);
}

criterion_group! {
    name = analytics;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = benches
}
criterion_main!(analytics);
