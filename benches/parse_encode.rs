//! Criterion benches of the client's hot path on generated lines, in MB/s on one
//! core: parsing alone (simd-json into a tape), and parse + field mapping + binary
//! COPY encoding as the load pipeline does it, on the generated lines and on the same
//! lines with floats in their metadata.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use logctl::ingest::encode::{LineEncoder, NulPolicy, ParseOptions, ServiceIds, ShapeChoice, Zone};
use logctl::synth::{GenOptions, write};

/// Service ids from a local map, as a warmed-up load has them.
struct Ids(HashMap<String, i32>);

impl ServiceIds for Ids {
    fn id(&mut self, name: &str) -> i32 {
        let next = self.0.len() as i32 + 1;
        *self.0.entry(name.to_string()).or_insert(next)
    }
}

fn generated_lines() -> Vec<u8> {
    let mut out = Vec::new();
    let options = GenOptions {
        lines: 20_000,
        seed: 42,
        services: 20,
        start_unix_micros: 1_795_478_400_000_000,
        lines_per_second: 50,
    };
    write(&options, &mut out).expect("generate");
    out
}

/// The generated lines with two floats at the start of each line's metadata, written
/// as loggers write durations and ratios (shortest form).
fn with_floats(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for (index, line) in data.split(|&b| b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        let floats = format!(
            r#""metadata":{{"cpu_seconds":{},"sample_ratio":{},"#,
            (index % 9973) as f64 / 8192.0,
            ((index * 7) % 1000) as f64 / 1000.0
        );
        out.extend_from_slice(text.replacen(r#""metadata":{"#, &floats, 1).as_bytes());
        out.push(b'\n');
    }
    out
}

fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Encodes every line, as the load's encode stage does.
fn bench_encoding(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, lines: &[&[u8]]) {
    group.bench_function(name, |b| {
        let mut encoder = LineEncoder::new(ParseOptions {
            shape: ShapeChoice::new(None, &[], None).expect("built-in shapes"),
            zone: Zone::Utc,
            nul: NulPolicy::Reject,
            max_line_bytes: 1 << 20,
            routes: Default::default(),
        });
        let mut ids = Ids(HashMap::new());
        let mut out = Vec::with_capacity(lines.iter().map(|l| l.len()).sum::<usize>() * 2);
        b.iter(|| {
            out.clear();
            for line in lines {
                encoder.encode(line, &mut ids, &mut out);
            }
            black_box(out.len())
        })
    });
}

fn benches(c: &mut Criterion) {
    let data = generated_lines();
    let lines = split_lines(&data);
    let mut group = c.benchmark_group("lines");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);

    group.bench_function("simd_json_tape", |b| {
        let mut buffers = simd_json::Buffers::default();
        let mut scratch = Vec::new();
        b.iter(|| {
            let mut nodes = 0;
            for line in &lines {
                scratch.clear();
                scratch.extend_from_slice(line);
                let tape =
                    simd_json::to_tape_with_buffers(&mut scratch, &mut buffers).expect("valid");
                nodes += tape.0.len();
            }
            black_box(nodes)
        })
    });

    bench_encoding(&mut group, "parse_and_encode_copy", &lines);
    group.finish();

    let floats = with_floats(&data);
    let lines = split_lines(&floats);
    let mut group = c.benchmark_group("lines_with_floats");
    group.throughput(Throughput::Bytes(floats.len() as u64));
    group.sample_size(20);
    bench_encoding(&mut group, "parse_and_encode_copy", &lines);
    group.finish();
}

criterion_group!(parse_encode, benches);
criterion_main!(parse_encode);
