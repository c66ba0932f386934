//! Criterion benches of the client's hot path on generated lines, in MB/s on one
//! core: parsing alone (simd-json into a tape), and parse + field mapping + binary
//! COPY encoding as the load pipeline does it.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
    };
    write(&options, &mut out).expect("generate");
    out
}

fn benches(c: &mut Criterion) {
    let data = generated_lines();
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
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

    group.bench_function("parse_and_encode_copy", |b| {
        let mut encoder = LineEncoder::new(ParseOptions {
            shape: ShapeChoice::new(None, &[], None).expect("built-in shapes"),
            zone: Zone::Utc,
            nul: NulPolicy::Reject,
            max_line_bytes: 1 << 20,
            routes: Default::default(),
        });
        let mut ids = Ids(HashMap::new());
        let mut out = Vec::with_capacity(data.len() * 2);
        b.iter(|| {
            out.clear();
            for line in &lines {
                encoder.encode(line, &mut ids, &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(parse_encode, benches);
criterion_main!(parse_encode);
