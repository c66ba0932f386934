//! The latency sketch against PostgreSQL: quantiles read from a sketch, by the Rust code
//! and by `sql/sketch_quantile.sql`, are within 1% of `percentile_disc` over the same
//! rows, and the SQL function returns the very estimate the Rust code does.

mod common;

use common::TestDb;
use logctl::analytics::sketch::Sketch;
use logctl::synth::{GenOptions, write};

const SKETCH_QUANTILE: &str = include_str!("../sql/sketch_quantile.sql");

fn encoded(sketch: &Sketch) -> Vec<u8> {
    let mut bytes = Vec::new();
    sketch.encode(&mut bytes);
    bytes
}

fn database() -> (TestDb, postgres::Client) {
    let db = TestDb::empty("sketch");
    let mut client = db.client();
    client.batch_execute(SKETCH_QUANTILE).unwrap();
    (db, client)
}

/// The latencies of generated logs, as `logctl load` would store them.
fn generated_latencies(lines: u64) -> Vec<i32> {
    let mut logs = Vec::new();
    let options = GenOptions {
        lines,
        seed: 7,
        services: 20,
        start_unix_micros: 1_795_478_400_000_000,
        lines_per_second: 50,
    };
    write(&options, &mut logs).unwrap();
    let key = "\"latency_ms\":";
    String::from_utf8(logs)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let digits = &line[line.find(key)? + key.len()..];
            let end = digits.find(|c: char| !c.is_ascii_digit())?;
            digits[..end].parse().ok()
        })
        .collect()
}

/// A deterministic heavy tail reaching i32::MAX: 1/u³ for u spread evenly over (0, 1].
fn heavy_tail(count: u32) -> Vec<i32> {
    (1..=count)
        .map(|n| {
            let u = f64::from(n) / f64::from(count);
            (1.0 / u.powi(3)).min(f64::from(i32::MAX)) as i32
        })
        .collect()
}

#[test]
fn quantiles_are_within_one_percent_of_percentile_disc_in_rust_and_in_sql() {
    let (_db, mut client) = database();
    client
        .batch_execute("CREATE TABLE latencies (distribution text, latency_ms integer)")
        .unwrap();
    let mut bimodal: Vec<i32> = (0..9_000).map(|n| 12 + n % 9).collect();
    bimodal.extend((0..1_000).map(|n| 2_400 + n));
    let mut zeros_and_an_outlier = vec![0; 5_000];
    zeros_and_an_outlier.extend(1..5_000);
    zeros_and_an_outlier.push(i32::MAX);
    let distributions = [
        ("generated logs", generated_latencies(20_000)),
        ("heavy tail", heavy_tail(20_000)),
        ("bimodal", bimodal),
        ("zeros and an outlier", zeros_and_an_outlier),
        ("all equal", vec![1_234; 1_000]),
        ("one row", vec![98_765]),
    ];
    let fractions: Vec<f64> = [0.0, 0.1, 0.25, 1.0]
        .into_iter()
        .chain((500..1000).map(|step| f64::from(step) / 1000.0))
        .collect();
    for (name, values) in distributions {
        client
            .execute(
                "INSERT INTO latencies SELECT $1, unnest($2::integer[])",
                &[&name, &values],
            )
            .unwrap();
        let exact: Vec<i32> = client
            .query_one(
                "SELECT percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY latency_ms) \
                 FROM latencies WHERE distribution = $1",
                &[&name, &fractions],
            )
            .unwrap()
            .get(0);
        let sketch: Sketch = values.iter().copied().collect();
        let from_sql: Vec<f64> = client
            .query_one(
                "SELECT array_agg(logctl_sketch_quantile($1, q) ORDER BY n) \
                 FROM unnest($2::float8[]) WITH ORDINALITY AS fractions (q, n)",
                &[&encoded(&sketch), &fractions],
            )
            .unwrap()
            .get(0);
        let mut worst: f64 = 0.0;
        for ((&q, &exact), &from_sql) in fractions.iter().zip(&exact).zip(&from_sql) {
            let estimate = sketch.quantile(q).unwrap();
            assert_eq!(from_sql.to_bits(), estimate.to_bits(), "{name}, q = {q}");
            let exact = f64::from(exact);
            let error = (estimate - exact).abs() / exact.max(1.0);
            assert!(error < 0.01, "{name}, q = {q}: {estimate} for {exact}");
            worst = worst.max(error);
        }
        eprintln!("{name}: worst relative error {:.4}%", worst * 100.0);
    }
}

#[test]
fn sql_reads_every_bucket_as_rust_does() {
    let (_db, mut client) = database();
    // Values 0.5% apart, so that each bucket (2% wide) gets some; 0 and i32::MAX beside
    // each keep the bucket's bounds from being narrowed to min and max.
    let mut values = Vec::new();
    let mut value = 1i64;
    while value <= i64::from(i32::MAX) {
        values.push(value as i32);
        value += (value / 200).max(1);
    }
    values.push(i32::MAX);
    let sketches: Vec<Sketch> = values
        .iter()
        .map(|&value| [0, value, i32::MAX].into_iter().collect())
        .collect();
    let encodings: Vec<Vec<u8>> = sketches.iter().map(encoded).collect();
    let from_sql: Vec<f64> = client
        .query_one(
            "SELECT array_agg(logctl_sketch_quantile(sketch, 0.5) ORDER BY n) \
             FROM unnest($1::bytea[]) WITH ORDINALITY AS sketches (sketch, n)",
            &[&encodings],
        )
        .unwrap()
        .get(0);
    for ((value, sketch), from_sql) in values.iter().zip(&sketches).zip(from_sql) {
        let estimate = sketch.quantile(0.5).unwrap();
        assert_eq!(from_sql.to_bits(), estimate.to_bits(), "value {value}");
    }
}

#[test]
fn sql_gives_null_for_an_empty_sketch_and_refuses_what_it_cannot_read() {
    let (_db, mut client) = database();
    let empty: Option<f64> = client
        .query_one(
            "SELECT logctl_sketch_quantile($1, 0.5)",
            &[&encoded(&Sketch::new())],
        )
        .unwrap()
        .get(0);
    assert_eq!(empty, None);
    let sketch = encoded(&[5, 10].into_iter().collect());
    for (bytes, q, message) in [
        (sketch.clone(), 1.5, "not between 0 and 1"),
        (sketch.clone(), f64::NAN, "not between 0 and 1"),
        (sketch[..sketch.len() - 1].to_vec(), 0.5, "corrupt"),
        ([sketch.as_slice(), &[0]].concat(), 0.5, "corrupt"),
        (vec![2, 0, 0], 0.5, "unknown format"),
        (vec![], 0.5, "unknown format"),
    ] {
        let error = client
            .query_one("SELECT logctl_sketch_quantile($1, $2)", &[&bytes, &q])
            .unwrap_err();
        let text = error.as_db_error().map(|e| e.message().to_string());
        assert!(
            text.as_deref().is_some_and(|text| text.contains(message)),
            "{bytes:?}, q = {q}: {error:?}"
        );
    }
}
