//! Property tests ("fuzzing") of the line encoder and of loading. The encoder must
//! never panic, whatever bytes or JSON it is given, and every tuple it writes must be
//! one PostgreSQL accepts; for lines in the generic shape a model of the README's rules,
//! written apart from the code, predicts which lines load and with which values, and a
//! load through `logctl load` must read back exactly that. See fuzz/README.md for how
//! to run it longer. Default case counts keep `cargo test` quick; PROPTEST_CASES raises
//! them and PROPTEST_RNG_SEED picks other inputs (the default seed is fixed, so a plain
//! `cargo test` is repeatable).

mod common;

use std::collections::HashMap;

use logctl::ingest::encode::{
    LineEncoder, LineOutcome, NulPolicy, ParseOptions, ServiceIds, ShapeChoice, Zone,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{RngSeed, TestCaseError, TestRunner};
use serde_json::{Map, Value};

use common::*;

// ---- Configuration ------------------------------------------------------------------

/// `cases` unless PROPTEST_CASES says otherwise; a fixed seed unless PROPTEST_RNG_SEED
/// says otherwise; no regression files written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x6c6f_6763_746c);
    }
    config.failure_persistence = None;
    config
}

/// Each load case starts a process and loads a file of up to 24 lines, so it runs
/// a twentieth of PROPTEST_CASES (and at least the default).
fn load_config() -> ProptestConfig {
    let mut config = config(12);
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config.cases = (config.cases / 20).max(12);
    }
    // A failing load case takes a process per shrink step.
    config.max_shrink_iters = config.max_shrink_iters.min(400);
    config
}

// ---- The encoder under test -----------------------------------------------------------

fn encoder(shape: Option<&str>, nul: NulPolicy) -> LineEncoder {
    LineEncoder::new(ParseOptions {
        shape: ShapeChoice::new(shape, &[], None).expect("built-in shapes"),
        zone: Zone::Utc,
        nul,
        max_line_bytes: 1 << 20,
        routes: Default::default(),
    })
}

/// Service ids from the name alone, so separate encoders agree; remembers the names.
#[derive(Default)]
struct Names(Vec<String>);

impl ServiceIds for Names {
    fn id(&mut self, name: &str) -> i32 {
        self.0.push(name.to_string());
        let hash = name.bytes().fold(0x811c_9dc5u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        (hash & 0x7fff_ffff) as i32
    }
}

/// PostgreSQL's timestamptz range, in microseconds since 2000-01-01.
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// One tuple, decoded from the binary COPY format.
#[derive(Debug, Clone, PartialEq)]
struct Tuple {
    service_id: i32,
    created_at: i64,
    level: Option<String>,
    message: Option<String>,
    endpoint: Option<String>,
    method: Option<String>,
    status: Option<i16>,
    latency_ms: Option<i32>,
    request_id: Option<uuid::Uuid>,
    metadata: String,
    route: Option<String>,
}

/// Decodes a tuple, checking everything PostgreSQL would check: field count and
/// lengths, UTF-8 without NUL in text, the table's CHECK constraints, the timestamp
/// range, and a JSON object (without `\u0000`) after jsonb's version byte.
fn decode(bytes: &[u8]) -> Result<Tuple, String> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let slice = bytes
            .get(at..at + n)
            .ok_or_else(|| format!("tuple ends at {at}, wanted {n} more bytes"))?;
        at += n;
        Ok(slice)
    };
    let count = i16::from_be_bytes(take(2)?.try_into().unwrap());
    if count != 12 {
        return Err(format!("field count {count}"));
    }
    let mut fields: Vec<Option<Vec<u8>>> = Vec::new();
    for _ in 0..12 {
        let length = i32::from_be_bytes(take(4)?.try_into().unwrap());
        fields.push(match length {
            -1 => None,
            n if n >= 0 => Some(take(n as usize)?.to_vec()),
            n => return Err(format!("field length {n}")),
        });
    }
    if at != bytes.len() {
        return Err(format!("{} bytes after the tuple", bytes.len() - at));
    }
    let fixed = |index: usize, length: usize| -> Result<Option<&[u8]>, String> {
        match &fields[index] {
            Some(value) if value.len() == length => Ok(Some(value)),
            Some(value) => Err(format!("field {index} has {} bytes", value.len())),
            None => Ok(None),
        }
    };
    let text = |index: usize| -> Result<Option<String>, String> {
        match &fields[index] {
            None => Ok(None),
            Some(value) => {
                let text = String::from_utf8(value.clone())
                    .map_err(|_| format!("field {index} is not UTF-8"))?;
                if text.contains('\0') {
                    return Err(format!("field {index} holds NUL"));
                }
                Ok(Some(text))
            }
        }
    };
    if fixed(0, 16)?.is_none() {
        return Err("no event_id".into());
    }
    let service_id = i32::from_be_bytes(fixed(1, 4)?.ok_or("no service_id")?.try_into().unwrap());
    let created_at = i64::from_be_bytes(fixed(2, 8)?.ok_or("no created_at")?.try_into().unwrap());
    if !(MIN_TIMESTAMP..END_TIMESTAMP).contains(&created_at) {
        return Err(format!(
            "created_at {created_at} is out of timestamptz range"
        ));
    }
    let status = fixed(7, 2)?.map(|b| i16::from_be_bytes(b.try_into().unwrap()));
    if status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(format!("status {status:?} breaks the CHECK"));
    }
    let latency_ms = fixed(8, 4)?.map(|b| i32::from_be_bytes(b.try_into().unwrap()));
    if latency_ms.is_some_and(|l| l < 0) {
        return Err(format!("latency {latency_ms:?} breaks the CHECK"));
    }
    let request_id = fixed(9, 16)?.map(|b| uuid::Uuid::from_slice(b).unwrap());
    let metadata = fields[10].as_ref().ok_or("no metadata")?;
    if metadata.first() != Some(&1) {
        return Err("jsonb version byte is not 1".into());
    }
    let metadata = String::from_utf8(metadata[1..].to_vec()).map_err(|_| "metadata not UTF-8")?;
    // Only the syntax: serde_json's f64 cannot hold every number jsonb keeps (1e400).
    serde_json::from_str::<serde::de::IgnoredAny>(&metadata)
        .map_err(|e| format!("metadata is not JSON ({e}): {metadata}"))?;
    if escapes_nul(&metadata) {
        return Err(format!("metadata holds U+0000: {metadata}"));
    }
    if !metadata.starts_with('{') {
        return Err(format!("metadata is not an object: {metadata}"));
    }
    let level = text(3)?;
    if level
        .as_ref()
        .is_some_and(|l| l.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(format!("level {level:?} is not lower-cased"));
    }
    let method = text(6)?;
    if method
        .as_ref()
        .is_some_and(|m| m.bytes().any(|b| b.is_ascii_lowercase()))
    {
        return Err(format!("method {method:?} is not upper-cased"));
    }
    let endpoint = text(5)?;
    let route = text(11)?;
    if route.is_some() != endpoint.is_some() {
        return Err(format!("route {route:?} for endpoint {endpoint:?}"));
    }
    Ok(Tuple {
        service_id,
        created_at,
        level,
        message: text(4)?,
        endpoint,
        route,
        method,
        status,
        latency_ms,
        request_id,
        metadata,
    })
}

/// Whether valid JSON text holds `\u0000` in a string or key, which jsonb refuses.
/// Backslashes appear only in strings, each starting an escape, so one pass finds it.
fn escapes_nul(json: &str) -> bool {
    let mut rest = json.as_bytes();
    while let Some(at) = rest.iter().position(|&byte| byte == b'\\') {
        if rest[at + 1..].starts_with(b"u0000") {
            return true;
        }
        rest = &rest[(at + 2).min(rest.len())..];
    }
    false
}

/// Encodes one line with `encoder`; checks the outcome's invariants (a rejected or
/// blank line leaves the buffer as it was and says why, an encoded one appends one
/// tuple PostgreSQL accepts, and its service name holds no NUL) and returns the outcome,
/// the tuple and the service name.
fn encode_checked(
    encoder: &mut LineEncoder,
    line: &[u8],
) -> Result<(LineOutcome, Option<Tuple>, Option<String>), String> {
    let mut names = Names::default();
    let mut out = b"previous tuples".to_vec();
    let outcome = encoder.encode(line, &mut names, &mut out);
    let (prefix, tuple) = out.split_at(15);
    if prefix != b"previous tuples" {
        return Err("the bytes before the tuple changed".into());
    }
    match outcome {
        LineOutcome::Encoded => {
            let tuple = decode(tuple)?;
            let name = names.0.pop().ok_or("encoded without a service")?;
            if name.contains('\0') {
                return Err(format!("service {name:?} holds NUL"));
            }
            Ok((LineOutcome::Encoded, Some(tuple), Some(name)))
        }
        other => {
            if !tuple.is_empty() {
                return Err(format!("{other:?} left {} bytes behind", tuple.len()));
            }
            if let LineOutcome::Rejected(reason) = &other
                && reason.trim().is_empty()
            {
                return Err("a reject without a reason".into());
            }
            Ok((other, None, None))
        }
    }
}

/// Encodes `lines` with one reused encoder and with a fresh encoder each, per NUL
/// policy and shape: each must hold its invariants and the two must agree, so nothing
/// of one line leaks into the next through the reused buffers.
fn encode_all_ways(lines: &[Vec<u8>], shapes: &[Option<&str>]) -> Result<(), TestCaseError> {
    for &shape in shapes {
        for nul in [NulPolicy::Reject, NulPolicy::Strip] {
            let mut shared = encoder(shape, nul);
            for line in lines {
                let reused = encode_checked(&mut shared, line).map_err(TestCaseError::fail)?;
                let fresh =
                    encode_checked(&mut encoder(shape, nul), line).map_err(TestCaseError::fail)?;
                prop_assert_eq!(
                    reused,
                    fresh,
                    "reused and fresh encoders disagree on {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }
    Ok(())
}

// ---- Generated JSON -------------------------------------------------------------------

/// Keys the generic shape reads (or this test uses); random keys avoid them.
const GENERIC_KEYS: [&str; 17] = [
    "ts",
    "timestamp",
    "time",
    "@timestamp",
    "service",
    "service_name",
    "level",
    "severity",
    "message",
    "msg",
    "latency_ms",
    "endpoint",
    "method",
    "status",
    "request_id",
    "metadata",
    "fuzz_id",
];

fn special_strings() -> Vec<String> {
    [
        "",
        " ",
        "\0",
        "a\0b",
        "\n",
        "\r\n",
        "trailing\n",
        "\"",
        "\\",
        "\\u0000",
        "\u{2028}",
        "\u{feff}",
        "💩",
        "\u{7f}",
        "é",
        "\t",
        "\u{1}",
        "\u{1f}",
        "null",
        "{}",
        "[1,2]",
        "{\"nested\":\"json\"}",
        "\u{10ffff}",
        "\u{fffd}",
        "ǅ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn json_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _./:-]{0,12}",
        2 => "\\PC{0,12}",
        1 => any::<String>(),
        1 => select(special_strings()),
    ]
    .boxed()
}

fn finite_f64() -> BoxedStrategy<f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        3 => POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        1 => -1e6..1e6f64,
        1 => select(vec![
            0.0,
            -0.0,
            0.1,
            1e-300,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            1e15,
            1e16,
            9007199254740993.0,
            123456.789,
        ]),
    ]
    .boxed()
}

fn json_number() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => (-1000i64..1000).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => select(vec![i64::MIN, i64::MAX, -1, 0]).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        2 => finite_f64().prop_map(Value::from),
    ]
    .boxed()
}

fn random_key() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "[a-c]",
        3 => "[a-z_]{1,10}",
        1 => json_string(),
    ]
    .prop_filter("not a key the generic shape reads", |key| {
        !GENERIC_KEYS.contains(&key.as_str())
    })
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => json_number(),
        3 => json_string().prop_map(Value::String),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                vec((random_key(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
        .boxed()
}

// ---- Known fields, with what the README says they become ---------------------------------

/// A timestamp the model knows: unix microseconds, give or take `slack` (epoch floats).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time {
    unix_micros: i64,
    slack: i64,
}

/// A generated value, with what the model needs to know of the strings it holds.
#[derive(Debug, Clone)]
struct Gen {
    value: Value,
    /// Timestamp strings and what they mean (None: not a time).
    times: Vec<(String, Option<Time>)>,
    /// Duration strings and their milliseconds (None: not a duration).
    durations: Vec<(String, Option<f64>)>,
}

impl Gen {
    fn plain(value: Value) -> Gen {
        Gen {
            value,
            times: Vec::new(),
            durations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Offset {
    Z,
    LowerZ,
    Naive,
    /// Minutes east, and how it is written: +02:00, +0200 or +02.
    Minutes(i32, u8),
}

fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        3 => Just(Offset::Z),
        1 => Just(Offset::LowerZ),
        1 => Just(Offset::Naive),
        2 => (-23i32..=23, 0i32..60, 0u8..2).prop_map(|(h, m, style)| Offset::Minutes(h * 60 + h.signum() * m, style)),
        1 => (-23i32..=23).prop_map(|h| Offset::Minutes(h * 60, 2)),
    ]
}

/// Unix seconds from 2000 to 2100.
fn instant() -> impl Strategy<Value = i64> {
    946_684_800i64..4_102_444_800
}

/// RFC 3339 in its variants, with the expected instant computed from its parts.
fn rfc3339() -> impl Strategy<Value = (String, Option<Time>)> {
    (
        instant(),
        0u32..1_000_000_000,
        0u32..=9,
        select(vec!['T', 't', ' ']),
        select(vec!['.', ',']),
        offset(),
    )
        .prop_map(|(seconds, nanos, digits, separator, comma, offset)| {
            let unit = 10u32.pow(9 - digits);
            let kept = nanos / unit * unit;
            let minutes = match offset {
                Offset::Minutes(minutes, _) => minutes,
                _ => 0,
            };
            let local = chrono::DateTime::from_timestamp(seconds + i64::from(minutes) * 60, 0)
                .unwrap()
                .naive_utc();
            let mut text = local
                .format(&format!("%Y-%m-%d{separator}%H:%M:%S"))
                .to_string();
            if digits > 0 {
                text.push(comma);
                text.push_str(&format!("{:0width$}", kept / unit, width = digits as usize));
            }
            let (sign, abs) = if minutes < 0 {
                ('-', -minutes)
            } else {
                ('+', minutes)
            };
            match offset {
                Offset::Z => text.push('Z'),
                Offset::LowerZ => text.push('z'),
                Offset::Naive => {}
                Offset::Minutes(_, 0) => {
                    text.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60))
                }
                Offset::Minutes(_, 1) => {
                    text.push_str(&format!("{sign}{:02}{:02}", abs / 60, abs % 60))
                }
                Offset::Minutes(_, _) => text.push_str(&format!("{sign}{:02}", abs / 60)),
            }
            // Nanoseconds round half up to PostgreSQL's microseconds.
            let micros = seconds * 1_000_000 + i64::from((kept + 500) / 1000);
            (
                text,
                Some(Time {
                    unix_micros: micros,
                    slack: 0,
                }),
            )
        })
}

fn time_text() -> BoxedStrategy<(String, Option<Time>)> {
    let exact = |micros: i64| {
        Some(Time {
            unix_micros: micros,
            slack: 0,
        })
    };
    prop_oneof![
        12 => rfc3339(),
        1 => instant().prop_map(move |s| (s.to_string(), exact(s * 1_000_000))),
        1 => (instant(), 0i64..1000).prop_map(move |(s, ms)| ((s * 1000 + ms).to_string(), exact(s * 1_000_000 + ms * 1000))),
        1 => (instant(), 0i64..1000).prop_map(|(s, ms)| (
            format!("{s}.{ms:03}"),
            Some(Time { unix_micros: s * 1_000_000 + ms * 1000, slack: 1 })
        )),
        1 => (instant(), -23i32..=23).prop_map(move |(s, h)| {
            let local = chrono::DateTime::from_timestamp(s + i64::from(h) * 3600, 0).unwrap().naive_utc();
            let sign = if h < 0 { '-' } else { '+' };
            (format!("{} {sign}{:02}00", local.format("%d/%b/%Y:%H:%M:%S"), h.abs()), exact(s * 1_000_000))
        }),
        1 => select(vec![
            "yesterday", "", "   ", "now", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z",
            "2026-11-24T10:00", "2026-11-24T24:00:00Z", "2026-11-24T10:60:00Z",
            "2026-11-24T10:00:00+24:00", "2026-11-24T10:00:00.Z", "2026-11-24T10:00:00 Z",
            "24/Nov/2026:10:00:00", "1e9", "--1", "0x10", "2026-11-24T10:00:00ZZ",
        ]).prop_map(|s| (s.to_string(), None)),
        1 => "[a-z ]{1,12}".prop_map(|s| (s, None)),
    ]
    .boxed()
}

fn timestamp_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        16 => time_text().prop_map(|(text, time)| Gen {
            value: Value::String(text.clone()),
            times: vec![(text, time)],
            durations: Vec::new(),
        }),
        2 => prop_oneof![
            instant(),
            instant().prop_map(|s| s * 1000),
            instant().prop_map(|s| s * 1_000_000),
            (instant(), 0i64..1_000_000_000).prop_map(|(s, n)| s * 1_000_000_000 + n),
            any::<i64>(),
        ].prop_map(|n| Gen::plain(Value::from(n))),
        2 => prop_oneof![
            (instant(), 0u32..1000).prop_map(|(s, ms)| s as f64 + f64::from(ms) / 1000.0),
            finite_f64(),
        ].prop_map(|f| Gen::plain(Value::from(f))),
        1 => prop_oneof![
            Just(Value::from(u64::MAX)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Array(vec![])),
            Just(serde_json::json!({"at": "2026-11-24T10:00:00Z"})),
        ].prop_map(Gen::plain),
        1 => Just(Gen::plain(Value::Null)),
    ]
    .boxed()
}

fn service_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        12 => select(vec!["api", "worker", "billing-svc", "  padded  ", "Ünïcødé", "svc\u{2003}", "ap\u{0}i", "x"])
            .prop_map(|s| Value::String(s.to_string())),
        3 => "\\PC{1,10}".prop_map(Value::String),
        1 => select(vec!["", "   ", "\u{3000}", "\t"]).prop_map(|s| Value::String(s.to_string())),
        1 => not_a_string(serde_json::json!({"name": "api"})),
    ]
    .prop_map(Gen::plain)
    .boxed()
}

/// A number, a boolean, `object` or null: where a string is expected, the wrong type.
fn not_a_string(object: Value) -> BoxedStrategy<Value> {
    prop_oneof![
        json_number(),
        any::<bool>().prop_map(Value::Bool),
        Just(object),
        Just(Value::Null),
    ]
    .boxed()
}

fn level_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        4 => select(vec!["info", "INFO", "Warn", "error", "debug", "TRACE", "fatal", "Ünï", "notice\0"])
            .prop_map(|s| Value::String(s.to_string())),
        1 => json_string().prop_map(Value::String),
        2 => prop_oneof![
            select(vec![10i64, 20, 30, 40, 50, 60, 0, 35, -1]),
            any::<i64>(),
        ].prop_map(Value::from),
        1 => prop_oneof![
            Just(Value::from(u64::MAX)),
            finite_f64().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            Just(serde_json::json!(["info"])),
            Just(Value::Null),
        ],
    ]
    .prop_map(Gen::plain)
    .boxed()
}

fn text_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        8 => json_string().prop_map(Value::String),
        1 => select(vec!["line\n", "line\r\n", "\n\n", "two\nlines\r", "\r"]).prop_map(|s| Value::String(s.to_string())),
        1 => not_a_string(serde_json::json!({"text": "hi"})),
    ]
    .prop_map(Gen::plain)
    .boxed()
}

fn method_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        6 => select(vec!["GET", "get", "Post", "DELETE", "pätch", "options\0"]).prop_map(|s| Value::String(s.to_string())),
        1 => text_value().prop_map(|g| g.value),
    ]
    .prop_map(Gen::plain)
    .boxed()
}

fn status_value() -> BoxedStrategy<Gen> {
    prop_oneof![
        6 => (100i64..600).prop_map(Value::from),
        1 => select(vec![0i64, 99, 600, 99999, -1, -200, i64::MIN]).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => select(vec![200.0, 404.0, 200.5, 1e7, -0.0, 599.0000001]).prop_map(Value::from),
        1 => select(vec!["200", " 404 ", "+503", "abc", "2e2", "", "600", "99"]).prop_map(|s| Value::String(s.to_string())),
        1 => prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            Just(serde_json::json!({"code": 200})),
            Just(Value::Null),
        ],
    ]
    .prop_map(Gen::plain)
    .boxed()
}

/// Go duration text from its parts, with its milliseconds summed as Go's units define them.
fn go_duration() -> BoxedStrategy<(String, Option<f64>)> {
    let part = (
        prop_oneof![
            (0u32..1000).prop_map(|n| n.to_string()),
            (0u32..1000, 1u32..100).prop_map(|(a, b)| format!("{a}.{b}"))
        ],
        select(vec![
            ("ns", 1e-6),
            ("us", 1e-3),
            ("µs", 1e-3),
            ("μs", 1e-3),
            ("ms", 1.0),
            ("s", 1e3),
            ("m", 60e3),
            ("h", 3600e3),
        ]),
    );
    (select(vec!["", "-", "+"]), vec(part, 1..4))
        .prop_map(|(sign, parts)| {
            let mut text = sign.to_string();
            let mut total = 0.0;
            for (number, (unit, factor)) in &parts {
                text.push_str(number);
                text.push_str(unit);
                total += number.parse::<f64>().unwrap() * factor;
            }
            (text, Some(if sign == "-" { -total } else { total }))
        })
        .boxed()
}

fn latency_value() -> BoxedStrategy<Gen> {
    let duration_text = prop_oneof![
        3 => go_duration(),
        2 => (finite_f64(), select(vec!["", " "])).prop_map(|(f, pad)| (format!("{pad}{f}{pad}"), Some(f))),
        1 => (0u32..100_000).prop_map(|n| (n.to_string(), Some(f64::from(n)))),
        1 => select(vec!["fast", "", "ms", "1x", "NaN", "inf", "-inf", "-", "1.2.3ms", "5 s", "1e400", "5ms5", "h"])
            .prop_map(|s| (s.to_string(), None)),
    ];
    prop_oneof![
        4 => (0u32..100_000).prop_map(|n| Gen::plain(Value::from(n))),
        2 => prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            finite_f64().prop_map(Value::from),
            select(vec![2147483647.0, 2147483647.4, 2147483647.5, -0.4, -0.5, 0.5, 3e9]).prop_map(Value::from),
        ].prop_map(Gen::plain),
        3 => duration_text.prop_map(|(text, millis)| Gen {
            value: Value::String(text.clone()),
            times: Vec::new(),
            durations: vec![(text, millis)],
        }),
        1 => prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            Just(serde_json::json!([350])),
            Just(Value::Null),
        ].prop_map(Gen::plain),
    ]
    .boxed()
}

fn request_id_value() -> BoxedStrategy<Gen> {
    let uuid = any::<u128>().prop_map(uuid::Uuid::from_u128);
    let text = prop_oneof![
        3 => uuid.clone().prop_map(|u| u.hyphenated().to_string()),
        1 => uuid.clone().prop_map(|u| u.hyphenated().to_string().to_uppercase()),
        1 => uuid.clone().prop_map(|u| u.simple().to_string()),
        1 => uuid.clone().prop_map(|u| u.braced().to_string()),
        1 => uuid.clone().prop_map(|u| u.urn().to_string()),
        1 => uuid.prop_map(|u| format!("  {}  ", u.hyphenated())),
        2 => json_string(),
    ];
    prop_oneof![
        8 => text.prop_map(Value::String),
        1 => json_number(),
        1 => Just(Value::Null),
    ]
    .prop_map(Gen::plain)
    .boxed()
}

fn request_field() -> BoxedStrategy<(String, Gen)> {
    prop_oneof![
        latency_value().prop_map(|g| ("latency_ms".to_string(), g)),
        text_value().prop_map(|g| ("endpoint".to_string(), g)),
        method_value().prop_map(|g| ("method".to_string(), g)),
        status_value().prop_map(|g| ("status".to_string(), g)),
        request_id_value().prop_map(|g| ("request_id".to_string(), g)),
    ]
    .boxed()
}

/// A line in the generic shape, as a JSON object and what the model must know of it.
#[derive(Debug, Clone)]
struct Line {
    object: Map<String, Value>,
    times: HashMap<String, Option<Time>>,
    durations: HashMap<String, Option<f64>>,
}

impl Line {
    fn text(&self) -> String {
        serde_json::to_string(&self.object).unwrap()
    }
}

/// logctl's own `metadata` object, whose keys join metadata's top level.
#[derive(Debug, Clone)]
enum Metadata {
    Absent,
    Object(Vec<(String, Gen)>),
    /// Anything else, any JSON value (an object too, then with random keys only).
    Other(Value),
}

fn generic_line() -> BoxedStrategy<Line> {
    let keyed = |keys: &'static [&'static str], value: BoxedStrategy<Gen>, max: usize| {
        vec((select(keys), value), 0..=max).prop_map(|entries| {
            entries
                .into_iter()
                .map(|(k, g)| (k.to_string(), g))
                .collect::<Vec<_>>()
        })
    };
    let inner_keys = prop_oneof![
        3 => random_key(),
        1 => select(vec!["ts", "msg", "level", "service", "time", "metadata", "message"]).prop_map(str::to_string),
    ];
    let metadata = prop_oneof![
        2 => Just(Metadata::Absent),
        3 => (vec((inner_keys, json_value()), 0..4), vec(request_field(), 0..4)).prop_map(|(plain, request)| {
            let mut entries: Vec<(String, Gen)> = plain.into_iter().map(|(k, v)| (k, Gen::plain(v))).collect();
            entries.extend(request);
            Metadata::Object(entries)
        }),
        1 => json_value().prop_map(Metadata::Other),
    ];
    (
        vec((random_key(), json_value()), 0..5),
        prop_oneof![
            19 => vec((select(&["ts", "timestamp", "time", "@timestamp"][..]), timestamp_value()), 1..=2),
            1 => Just(Vec::new()),
        ],
        prop_oneof![
            19 => vec((select(&["service", "service_name"][..]), service_value()), 1..=2),
            1 => Just(Vec::new()),
        ],
        keyed(&["level", "severity"], level_value(), 2),
        keyed(&["message", "msg"], text_value(), 2),
        vec(request_field(), 0..5),
        metadata,
    )
        .prop_map(|(extra, times, services, levels, messages, request, metadata)| {
            let mut line = Line {
                object: Map::new(),
                times: HashMap::new(),
                durations: HashMap::new(),
            };
            let add = |line: &mut Line, key: String, generated: Gen| {
                line.times.extend(generated.times);
                line.durations.extend(generated.durations);
                line.object.insert(key, generated.value);
            };
            for (key, value) in extra {
                add(&mut line, key, Gen::plain(value));
            }
            for (key, generated) in times
                .into_iter()
                .map(|(k, g)| (k.to_string(), g))
                .chain(services.into_iter().map(|(k, g)| (k.to_string(), g)))
                .chain(levels)
                .chain(messages)
                .chain(request)
            {
                add(&mut line, key, generated);
            }
            match metadata {
                Metadata::Absent => {}
                Metadata::Other(value) => add(&mut line, "metadata".to_string(), Gen::plain(value)),
                Metadata::Object(entries) => {
                    let mut inner = Map::new();
                    for (key, generated) in entries {
                        line.times.extend(generated.times);
                        line.durations.extend(generated.durations);
                        inner.insert(key, generated.value);
                    }
                    line.object.insert("metadata".to_string(), Value::Object(inner));
                }
            }
            line
        })
        .boxed()
}

// ---- The model --------------------------------------------------------------------------

/// What a loaded line's row holds.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: Time,
    service: String,
    level: Option<String>,
    message: Option<String>,
    endpoint: Option<String>,
    method: Option<String>,
    status: Option<i32>,
    latency_ms: Option<i32>,
    request_id: Option<String>,
    metadata: Value,
}

/// Why the model rejects a line (kept for failure messages).
type Rejected = String;

/// An epoch number by magnitude: seconds below 1e11, then ms below 1e14, µs below 1e17,
/// else ns rounded half up.
fn epoch_integer(value: i64) -> i64 {
    let v = i128::from(value);
    let magnitude = value.unsigned_abs();
    let micros = if magnitude < 100_000_000_000 {
        v * 1_000_000
    } else if magnitude < 100_000_000_000_000 {
        v * 1_000
    } else if magnitude < 100_000_000_000_000_000 {
        v
    } else {
        (v + 500).div_euclid(1000)
    };
    micros as i64
}

fn epoch_float(value: f64) -> Option<Time> {
    let magnitude = value.abs();
    let micros = if magnitude < 1e11 {
        value * 1e6
    } else if magnitude < 1e14 {
        value * 1e3
    } else if magnitude < 1e17 {
        value
    } else {
        value / 1e3
    };
    let micros = micros.round();
    (micros.abs() <= 9.0e15).then_some(Time {
        unix_micros: micros as i64,
        slack: 1,
    })
}

fn model_time(line: &Line, value: &Value) -> Result<Time, Rejected> {
    match value {
        Value::String(text) => line
            .times
            .get(text)
            .copied()
            .flatten()
            .ok_or_else(|| format!("`{text}` is not a time")),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Ok(Time {
                unix_micros: epoch_integer(i),
                slack: 0,
            }),
            (None, Some(_), _) => Err("epoch out of range".into()),
            (_, _, Some(f)) => epoch_float(f).ok_or_else(|| "epoch float out of range".into()),
            _ => unreachable!(),
        },
        other => Err(format!("{other} is not a time")),
    }
}

fn http_status(value: &Value) -> Result<i32, Rejected> {
    let number = match value {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e6)
            .map(|f| f as i64),
        Value::Number(n) => n.as_i64(),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    };
    match number {
        Some(code @ 100..=599) => Ok(code as i32),
        _ => Err(format!("{value} is not an HTTP status")),
    }
}

fn latency(line: &Line, value: &Value) -> Result<i32, Rejected> {
    let millis = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => line.durations.get(text).copied().flatten(),
        _ => None,
    }
    .ok_or_else(|| format!("{value} is not a duration"))?;
    let rounded = millis.round();
    if rounded < 0.0 || rounded > f64::from(i32::MAX) {
        return Err(format!("{value} is out of latency_ms's range"));
    }
    Ok(rounded as i32)
}

fn level_name(value: &Value) -> Result<String, Rejected> {
    match value {
        Value::String(text) => Ok(text.to_ascii_lowercase()),
        Value::Number(n) => match n.as_i64().filter(|_| !n.is_f64()) {
            Some(10) => Ok("trace".into()),
            Some(20) => Ok("debug".into()),
            Some(30) => Ok("info".into()),
            Some(40) => Ok("warn".into()),
            Some(50) => Ok("error".into()),
            Some(60) => Ok("fatal".into()),
            Some(other) => Ok(other.to_string()),
            None => Err(format!("level {value}")),
        },
        _ => Err(format!("level {value}")),
    }
}

fn string_of(value: &Value, what: &str) -> Result<String, Rejected> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what} {value} is not a string"))
}

/// U+0000 by policy: dropped, or the line is rejected.
struct Nul {
    strip: bool,
}

impl Nul {
    fn text(&self, text: String) -> Result<String, Rejected> {
        if !text.contains('\0') {
            Ok(text)
        } else if self.strip {
            Ok(text.replace('\0', ""))
        } else {
            Err(format!("{text:?} holds U+0000"))
        }
    }

    fn value(&self, value: &Value) -> Result<Value, Rejected> {
        Ok(match value {
            Value::String(text) => Value::String(self.text(text.clone())?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(entries) => {
                let mut object = Map::new();
                for (key, value) in entries {
                    object.insert(self.text(key.clone())?, self.value(value)?);
                }
                Value::Object(object)
            }
            other => other.clone(),
        })
    }
}

/// What the README says becomes of a line in the generic shape: the first key present
/// (not null) of each column's keys feeds it; request fields at the top level beat
/// those inside `metadata`; a request id that is not a string feeds nothing; metadata is
/// everything else, `metadata`'s own keys merged in, with the request fields under
/// their names; U+0000 follows the policy.
fn model(line: &Line, nul: &Nul) -> Result<Row, Rejected> {
    let object = &line.object;
    let inner = object.get("metadata").and_then(Value::as_object);
    let top = |keys: &[&'static str]| {
        keys.iter()
            .find_map(|key| object.get(*key).filter(|v| !v.is_null()).map(|v| (*key, v)))
    };
    // A request field: (at the top level?, key, value).
    let request = |key: &'static str| {
        object
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (true, key, v))
            .or_else(|| {
                inner
                    .and_then(|m| m.get(key))
                    .filter(|v| !v.is_null())
                    .map(|v| (false, key, v))
            })
    };
    let mut top_winners: Vec<&str> = Vec::new();
    let mut inner_winners: Vec<&str> = Vec::new();
    let (time_key, time_value) =
        top(&["ts", "timestamp", "time", "@timestamp"]).ok_or("no timestamp")?;
    top_winners.push(time_key);
    let time = model_time(line, time_value)?;

    let (service_key, service_value) = top(&["service", "service_name"]).ok_or("no service")?;
    top_winners.push(service_key);
    let service = nul.text(string_of(service_value, "service")?)?;
    let service = service.trim().to_string();
    if service.is_empty() {
        return Err("empty service".into());
    }

    let level = match top(&["level", "severity"]) {
        None => None,
        Some((key, value)) => {
            top_winners.push(key);
            Some(nul.text(level_name(value)?)?)
        }
    };
    let message = match top(&["message", "msg"]) {
        None => None,
        Some((key, value)) => {
            top_winners.push(key);
            let text = string_of(value, "message")?;
            Some(nul.text(text.trim_end_matches(['\n', '\r']).to_string())?)
        }
    };
    // The value that feeds a request column, remembering where its key was.
    let mut win = |key: &'static str| {
        request(key).map(|(at_top, key, value)| {
            if at_top {
                top_winners.push(key);
            } else {
                inner_winners.push(key);
            }
            value
        })
    };
    let endpoint = win("endpoint")
        .map(|value| string_of(value, "endpoint").and_then(|t| nul.text(t)))
        .transpose()?;
    let method = win("method")
        .map(|value| string_of(value, "method").and_then(|t| nul.text(t.to_ascii_uppercase())))
        .transpose()?;
    let status = win("status").map(http_status).transpose()?;
    let latency_ms = win("latency_ms")
        .map(|value| latency(line, value))
        .transpose()?;
    // A request id that is not a string feeds nothing and stays where it is.
    let request_id_text = match request("request_id") {
        Some((_, _, Value::String(_))) => {
            let value = win("request_id").unwrap();
            Some(nul.text(value.as_str().unwrap().to_string())?)
        }
        _ => None,
    };
    let request_id = request_id_text.as_ref().and_then(|text| {
        uuid::Uuid::try_parse(text.trim())
            .ok()
            .map(|u| u.hyphenated().to_string())
    });

    let mut metadata = Map::new();
    for (key, value) in object {
        if top_winners.contains(&key.as_str()) {
            continue;
        }
        if let (true, Some(inner)) = (key == "metadata", value.as_object()) {
            for (key, value) in inner {
                if !inner_winners.contains(&key.as_str()) {
                    metadata.insert(nul.text(key.clone())?, nul.value(value)?);
                }
            }
            continue;
        }
        metadata.insert(nul.text(key.clone())?, nul.value(value)?);
    }
    if let Some(endpoint) = &endpoint {
        metadata.insert("endpoint".into(), Value::from(endpoint.as_str()));
    }
    if let Some(method) = &method {
        metadata.insert("method".into(), Value::from(method.as_str()));
    }
    if let Some(status) = status {
        metadata.insert("status".into(), Value::from(status));
    }
    if let Some(latency) = latency_ms {
        metadata.insert("latency_ms".into(), Value::from(latency));
    }
    if let Some(text) = &request_id_text {
        metadata.insert("request_id".into(), Value::from(text.as_str()));
    }
    Ok(Row {
        time,
        service,
        level,
        message,
        endpoint,
        method,
        status,
        latency_ms,
        request_id,
        metadata: Value::Object(metadata),
    })
}

/// JSON equality with numbers as f64, allowing serde_json's float parsing (not always
/// correctly rounded without its float_roundtrip feature) two units in the last place.
/// The load test compares exactly, as jsonb, in PostgreSQL.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x == y;
            }
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= 2)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_json(value, other)))
        }
        _ => a == b,
    }
}

fn close(actual_unix_micros: i64, expected: Time) -> bool {
    actual_unix_micros.abs_diff(expected.unix_micros) <= expected.slack as u64
}

/// Compares a decoded tuple with the model's row; Err says what differs.
fn check_tuple(tuple: &Tuple, service: &str, row: &Row) -> Result<(), String> {
    let metadata: Value = serde_json::from_str(&tuple.metadata).unwrap();
    let actual_time = tuple.created_at + POSTGRES_EPOCH_UNIX_MICROS;
    let mismatch = |what: &str, actual: &dyn std::fmt::Debug, expected: &dyn std::fmt::Debug| {
        Err(format!("{what}: encoded {actual:?}, expected {expected:?}"))
    };
    if !close(actual_time, row.time) {
        return mismatch("created_at", &actual_time, &row.time);
    }
    if service != row.service {
        return mismatch("service", &service, &row.service);
    }
    if tuple.level != row.level {
        return mismatch("level", &tuple.level, &row.level);
    }
    if tuple.message != row.message {
        return mismatch("message", &tuple.message, &row.message);
    }
    if tuple.endpoint != row.endpoint {
        return mismatch("endpoint", &tuple.endpoint, &row.endpoint);
    }
    if tuple.method != row.method {
        return mismatch("method", &tuple.method, &row.method);
    }
    if tuple.status.map(i32::from) != row.status {
        return mismatch("status", &tuple.status, &row.status);
    }
    if tuple.latency_ms != row.latency_ms {
        return mismatch("latency_ms", &tuple.latency_ms, &row.latency_ms);
    }
    let request_id = tuple.request_id.map(|u| u.hyphenated().to_string());
    if request_id != row.request_id {
        return mismatch("request_id", &request_id, &row.request_id);
    }
    if !same_json(&metadata, &row.metadata) {
        return mismatch("metadata", &metadata, &row.metadata);
    }
    Ok(())
}

// ---- Properties of the encoder alone ----------------------------------------------------------

/// Every built-in shape, detected per line, and the generic one forced.
const SHAPES: [Option<&str>; 2] = [None, Some("generic")];

/// Keys of every built-in shape, so detection and the nested, flat-dotted and inner-line
/// paths are all reached.
const SHAPE_KEYS: [&str; 48] = [
    "@timestamp",
    "ecs.version",
    "ecs",
    "log.level",
    "service.name",
    "event.duration",
    "event",
    "http",
    "url",
    "trace.id",
    "log",
    "stream",
    "time",
    "time_local",
    "time_iso8601",
    "request",
    "request_time",
    "remote_addr",
    "server_name",
    "host",
    "http_host",
    "uri",
    "request_uri",
    "request_method",
    "ts",
    "caller",
    "level",
    "msg",
    "logger",
    "duration",
    "elapsed",
    "pid",
    "hostname",
    "name",
    "v",
    "req",
    "res",
    "responseTime",
    "message",
    "service",
    "severity",
    "timestamp",
    "latency_ms",
    "endpoint",
    "method",
    "status",
    "request_id",
    "metadata",
];

/// Objects keyed like any shape's lines, with values of any type, nested objects under
/// the shapes' parent keys, request lines, and Docker's `log` holding JSON text.
fn shaped_object() -> BoxedStrategy<Value> {
    let nested = vec(
        (
            select(
                &[
                    "name",
                    "method",
                    "status_code",
                    "id",
                    "duration",
                    "request",
                    "response",
                    "url",
                    "statusCode",
                ][..],
            ),
            prop_oneof![
                json_leaf(),
                vec(
                    (select(&["method", "status_code", "id"][..]), json_leaf()),
                    0..3
                )
                .prop_map(|e| Value::Object(
                    e.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                ))
            ],
        ),
        0..4,
    )
    .prop_map(|entries| {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    });
    let value = prop_oneof![
        4 => json_value(),
        2 => timestamp_value().prop_map(|g| g.value),
        1 => latency_value().prop_map(|g| g.value),
        2 => nested,
        1 => select(vec!["GET /a HTTP/1.1", "POST", "", "  GET  ", "DELETE /x?y=1 HTTP/2.0 extra"]).prop_map(|s| Value::String(s.to_string())),
    ];
    let flat = vec((select(&SHAPE_KEYS[..]), value), 0..10).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>()
    });
    (
        flat.clone(),
        flat,
        any::<bool>(),
        select(vec!["", "\n", "\r\n", " "]),
    )
        .prop_map(|(mut outer, inner, wrap, newline)| {
            if wrap {
                let text = serde_json::to_string(&inner).unwrap() + newline;
                outer.insert("log".to_string(), Value::String(text));
            }
            Value::Object(outer)
        })
        .boxed()
}

/// Random damage to a valid line: bytes changed, inserted, removed, cut, repeated.
fn mutated_line() -> BoxedStrategy<Vec<u8>> {
    let special = select(vec![
        b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', 0, 0xff, 0xc3, 0xe2, b'\n', b'\r', b' ',
        b'u', b'0', b'-', b'e',
    ]);
    (
        generic_line(),
        vec(
            (
                any::<prop::sample::Index>(),
                0u8..5,
                prop_oneof![any::<u8>(), special],
            ),
            1..6,
        ),
    )
        .prop_map(|(line, edits)| {
            let mut bytes = line.text().into_bytes();
            for (index, kind, byte) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let at = index.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 => {
                        bytes.remove(at);
                    }
                    3 => bytes.truncate(at),
                    _ => {
                        let end = (at + 8).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            bytes
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(400))]

    /// Arbitrary bytes, one line each.
    #[test]
    fn the_encoder_survives_arbitrary_bytes(lines in vec(vec(any::<u8>(), 0..2000), 1..4)) {
        encode_all_ways(&lines, &SHAPES)?;
    }

    /// Valid lines with a few bytes damaged: mostly invalid JSON, sometimes valid JSON
    /// with odd values, and invalid UTF-8 or NUL inside strings.
    #[test]
    fn the_encoder_survives_damaged_lines(lines in vec(mutated_line(), 1..4)) {
        encode_all_ways(&lines, &SHAPES)?;
    }

    /// JSON objects keyed like every shape's lines, with values of any type.
    #[test]
    fn the_encoder_survives_json_of_every_shape(objects in vec(shaped_object(), 1..5)) {
        let lines: Vec<Vec<u8>> = objects.iter().map(|o| serde_json::to_vec(o).unwrap()).collect();
        encode_all_ways(&lines, &SHAPES)?;
    }

    /// Lines in the generic shape: the encoder loads exactly the lines the model loads,
    /// with the model's values.
    #[test]
    fn the_encoder_agrees_with_the_model(line in generic_line(), strip in any::<bool>()) {
        let text = line.text();
        let nul = if strip { NulPolicy::Strip } else { NulPolicy::Reject };
        let (outcome, tuple, service) = encode_checked(&mut encoder(Some("generic"), nul), text.as_bytes())
            .map_err(TestCaseError::fail)?;
        match (model(&line, &Nul { strip }), outcome) {
            (Ok(row), LineOutcome::Encoded) => {
                check_tuple(&tuple.unwrap(), &service.unwrap(), &row)
                    .map_err(|e| TestCaseError::fail(format!("{e}\nline: {text}")))?;
            }
            (Err(_), LineOutcome::Rejected(_)) => {}
            (expected, actual) => {
                return Err(TestCaseError::fail(format!(
                    "model: {expected:?}\nencoder: {actual:?}\nline: {text}\nstrip: {strip}"
                )));
            }
        }
    }
}

// ---- Round trip through PostgreSQL ----------------------------------------------------------------

/// Files of generated lines loaded with `logctl load --shape generic`: the lines the
/// model rejects are in the reject file with their line numbers, and every other line
/// reads back with the model's typed columns and, compared as jsonb, its metadata.
#[test]
fn loaded_lines_read_back_with_the_models_values() {
    let db = TestDb::with_schema("fuzz_load");
    let dir = scratch_dir("fuzz_load");
    let file = dir.join("lines.ndjson");
    let rejects = dir.join("rejects.ndjson");
    let client = std::cell::RefCell::new(db.client());
    let mut runner = TestRunner::new(load_config());
    // Lines, --strip-nul, CRLF endings, batches of 2 KiB (many batches, several in flight).
    let cases = (
        vec(generic_line(), 1..=24),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let result = runner.run(&cases, |(lines, strip, crlf, small_batches)| {
        let mut client = client.borrow_mut();
        client
            .batch_execute("TRUNCATE log_events, services, logctl_ranges, logctl_sources")
            .unwrap();
        let _ = std::fs::remove_file(&rejects);
        let mut text = String::new();
        let mut expected = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            let mut line = line.clone();
            line.object.insert("fuzz_id".into(), Value::from(index));
            text.push_str(&line.text());
            text.push_str(if crlf { "\r\n" } else { "\n" });
            expected.push((line.text(), model(&line, &Nul { strip })));
        }
        std::fs::write(&file, &text).unwrap();
        let mut args = vec![
            "load",
            "--shape",
            "generic",
            "--format",
            "json",
            "--rejects",
            rejects.to_str().unwrap(),
            file.to_str().unwrap(),
        ];
        if strip {
            args.push("--strip-nul");
        }
        if small_batches {
            args.extend(["--batch-bytes", "2KiB"]);
        }
        let output = db.logctl(&args).output().unwrap();
        let any_rejected = expected.iter().any(|(_, e)| e.is_err());
        prop_assert_eq!(
            output.status.code(),
            Some(if any_rejected { 4 } else { 0 }),
            "stderr: {}\nstdout: {}",
            stderr(&output),
            stdout(&output)
        );
        let mut rejected_lines: Vec<u64> = std::fs::read_to_string(&rejects)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["line"].as_u64().unwrap())
            .collect();
        rejected_lines.sort();
        let expected_rejects: Vec<u64> = expected
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| e.is_err())
            .map(|(i, _)| i as u64 + 1)
            .collect();
        prop_assert_eq!(&rejected_lines, &expected_rejects, "rejected lines; expected {:#?}", expected);

        let rows = client
            .query(
                "SELECT (l.metadata->>'fuzz_id')::int, (extract(epoch FROM l.created_at) * 1000000)::bigint, \
                 s.service_name, l.level, l.message, l.endpoint, l.method, l.status::int, l.latency_ms, \
                 l.request_id::text, l.metadata::text \
                 FROM log_events l JOIN services s USING (service_id)",
                &[],
            )
            .unwrap();
        prop_assert_eq!(rows.len(), expected.len() - expected_rejects.len());
        for row in rows {
            let id: i32 = row.get(0);
            let (line, model_row) = &expected[id as usize];
            let want = model_row.as_ref().unwrap();
            let time: i64 = row.get(1);
            let context = format!("line {}: {line}", id + 1);
            prop_assert!(close(time, want.time), "created_at {} vs {:?}; {}", time, want.time, context);
            prop_assert_eq!(&row.get::<_, String>(2), &want.service, "{}", context);
            prop_assert_eq!(&row.get::<_, Option<String>>(3), &want.level, "{}", context);
            prop_assert_eq!(&row.get::<_, Option<String>>(4), &want.message, "{}", context);
            prop_assert_eq!(&row.get::<_, Option<String>>(5), &want.endpoint, "{}", context);
            prop_assert_eq!(&row.get::<_, Option<String>>(6), &want.method, "{}", context);
            prop_assert_eq!(row.get::<_, Option<i32>>(7), want.status, "{}", context);
            prop_assert_eq!(row.get::<_, Option<i32>>(8), want.latency_ms, "{}", context);
            prop_assert_eq!(&row.get::<_, Option<String>>(9), &want.request_id, "{}", context);
            // Compared as jsonb, in PostgreSQL: numbers compare as numeric, exactly, so a
            // float that lost a bit on the way in shows up. (serde_json cannot be trusted to
            // read back PostgreSQL's plain-notation numbers: 1.7976931348623157e308 comes
            // back as 309 digits, which its default float parser calls out of range.)
            let stored: String = row.get(10);
            let expected_json = serde_json::to_string(&want.metadata).unwrap();
            let exact: bool = client
                .query_one(
                    "SELECT metadata = $1::text::jsonb FROM log_events WHERE (metadata->>'fuzz_id')::int = $2",
                    &[&expected_json, &id],
                )
                .unwrap()
                .get(0);
            let as_f64 = serde_json::from_str::<Value>(&stored)
                .map(|stored| same_json(&stored, &want.metadata));
            prop_assert!(
                exact,
                "metadata {} differs as jsonb from {} (equal as f64: {:?}); {}",
                stored, expected_json, as_f64, context
            );
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

// ---- Numbers as written -------------------------------------------------------------------

/// A JSON text with numbers written every way, as a line holds it (with whitespace) and
/// compact, as the encoder writes it to metadata.
#[derive(Debug, Clone)]
struct Numbers {
    spaced: String,
    compact: String,
    /// Whether every number is far inside numeric's limits (exponents below 16000).
    tame: bool,
}

impl Numbers {
    fn plain(text: String, tame: bool) -> Numbers {
        Numbers {
            spaced: text.clone(),
            compact: text,
            tame,
        }
    }
}

/// Number text as anyone may write it: a sign or none, digits beyond what f64 and 128-bit
/// integers hold, trailing zeros, and exponents near and past numeric's limits (131072
/// digits before the point, 16383 after, exponents from INT_MAX / 2 on).
fn written_number() -> BoxedStrategy<Numbers> {
    let integer = prop_oneof![
        2 => Just("0".to_string()),
        4 => "[1-9][0-9]{0,5}",
        2 => "[1-9][0-9]{15,45}",
        1 => "[1-9]0{0,60}",
    ];
    let fraction = prop_oneof![
        3 => Just(String::new()),
        3 => "\\.[0-9]{1,6}",
        1 => "\\.[0-9]{15,45}",
        1 => "\\.[0-9]{0,3}0{1,5}",
    ];
    let magnitude = prop_oneof![
        4 => (0u64..30).prop_map(|e| e.to_string()),
        2 => (290u64..420).prop_map(|e| e.to_string()),
        1 => (16_370u64..16_400).prop_map(|e| e.to_string()),
        1 => (131_060u64..131_080).prop_map(|e| e.to_string()),
        1 => (1_073_741_815u64..1_073_741_830).prop_map(|e| e.to_string()),
        1 => Just("99999999999999999999999".to_string()),
    ];
    let exponent = prop_oneof![
        3 => Just((String::new(), true)),
        2 => (select(vec!["e", "E"]), select(vec!["", "+", "-"]), magnitude).prop_map(
            |(e, sign, magnitude)| {
                let tame = magnitude.parse::<u64>().is_ok_and(|m| m < 16_000);
                (format!("{e}{sign}{magnitude}"), tame)
            }
        ),
    ];
    (select(vec!["", "-"]), integer, fraction, exponent)
        .prop_map(|(sign, integer, fraction, (exponent, tame))| {
            let spaced = format!("{sign}{integer}{fraction}{exponent}");
            // 64-bit integers are formatted from the tape, where -0 is 0, as in jsonb.
            let compact = if spaced == "-0" {
                "0".to_string()
            } else {
                spaced.clone()
            };
            Numbers {
                spaced,
                compact,
                tame,
            }
        })
        .boxed()
}

/// Whitespace JSON allows between tokens (a line's own, so no newline).
fn blank() -> impl Strategy<Value = &'static str> {
    select(vec!["", "", "", " ", "\t", "  "])
}

/// Values holding such numbers: alone, in arrays and objects, beside strings that look
/// like numbers.
fn numbers_value() -> BoxedStrategy<Numbers> {
    let leaf = prop_oneof![
        6 => written_number(),
        1 => written_number().prop_map(|n| Numbers::plain(format!("\"{}\"", n.spaced), true)),
        1 => select(vec!["true", "false", "null", "\"\""]).prop_map(|s| Numbers::plain(s.to_string(), true)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec((blank(), inner.clone(), blank()), 0..5).prop_map(|items| {
                join_numbers(
                    items
                        .into_iter()
                        .map(|(before, item, after)| (String::new(), before, item, after)),
                    "[",
                    "]",
                )
            }),
            vec(("[a-c]", blank(), blank(), inner, blank()), 0..5).prop_map(|entries| {
                join_numbers(
                    entries
                        .into_iter()
                        .map(|(key, before_colon, before, item, after)| {
                            (format!("\"{key}\"{before_colon}:"), before, item, after)
                        }),
                    "{",
                    "}",
                )
            }),
        ]
    })
    .boxed()
}

/// Items (a key and colon or nothing, blanks around the value) between `open` and `close`.
fn join_numbers(
    items: impl Iterator<Item = (String, &'static str, Numbers, &'static str)>,
    open: &str,
    close: &str,
) -> Numbers {
    let mut joined = Numbers::plain(open.to_string(), true);
    for (index, (key, before, item, after)) in items.enumerate() {
        if index > 0 {
            joined.spaced.push(',');
            joined.compact.push(',');
        }
        joined
            .spaced
            .push_str(&format!("{key}{before}{}{after}", item.spaced));
        joined.compact.push_str(&key.replace([' ', '\t'], ""));
        joined.compact.push_str(&item.compact);
        joined.tame &= item.tame;
    }
    joined.spaced.push_str(close);
    joined.compact.push_str(close);
    joined
}

/// The keys of a line in the generic shape that no column takes, holding such values:
/// `"n0":...,"n1":...`.
fn numbers_body() -> BoxedStrategy<Numbers> {
    vec((blank(), numbers_value(), blank()), 1..6)
        .prop_map(|values| {
            let entries = values
                .into_iter()
                .enumerate()
                .map(|(index, (before, value, after))| {
                    (format!("\"n{index}\":"), before, value, after)
                });
            let mut body = join_numbers(entries, "", "");
            // A blank after the comma the line puts before the body.
            body.spaced.insert(0, ' ');
            body
        })
        .boxed()
}

fn numbers_line(id: usize, body: &str) -> String {
    format!(
        r#"{{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"numbers","fuzz_id":{id},{body}}}"#
    )
}

const BEYOND_JSONB: &str = "beyond what PostgreSQL's jsonb can store";

proptest! {
    #![proptest_config(config(400))]

    /// Metadata holds every number exactly as the line wrote it; the encoder refuses
    /// only numbers past numeric's limits, saying so.
    #[test]
    fn the_encoder_keeps_numbers_as_written(body in numbers_body()) {
        let line = numbers_line(7, &body.spaced);
        let (outcome, tuple, _) = encode_checked(&mut encoder(Some("generic"), NulPolicy::Reject), line.as_bytes())
            .map_err(TestCaseError::fail)?;
        match outcome {
            LineOutcome::Encoded => prop_assert_eq!(
                tuple.unwrap().metadata,
                format!("{{\"fuzz_id\":7,{}}}", body.compact),
                "line: {}", line
            ),
            LineOutcome::Rejected(reason) => prop_assert!(
                !body.tame && reason.contains(BEYOND_JSONB),
                "rejected: {}\nline: {}", reason, line
            ),
            LineOutcome::Blank => prop_assert!(false, "blank: {}", line),
        }
    }
}

/// Files of lines whose numbers are written every way, loaded with `logctl load`: each
/// line PostgreSQL's jsonb can hold reads back as `metadata::text` exactly as jsonb
/// gives the original line (minus the columns' keys), and each line it refuses is a
/// reject saying why.
#[test]
fn loaded_numbers_read_back_as_jsonb_reads_them() {
    let db = TestDb::with_schema("fuzz_numbers");
    let dir = scratch_dir("fuzz_numbers");
    let file = dir.join("lines.ndjson");
    let rejects = dir.join("rejects.ndjson");
    let client = std::cell::RefCell::new(db.client());
    let mut runner = TestRunner::new(load_config());
    let result = runner.run(&vec(numbers_body(), 1..=12), |bodies| {
        let mut client = client.borrow_mut();
        client
            .batch_execute("TRUNCATE log_events, services, logctl_ranges, logctl_sources")
            .unwrap();
        let _ = std::fs::remove_file(&rejects);
        let mut text = String::new();
        let mut expected = Vec::new();
        for (id, body) in bodies.iter().enumerate() {
            text.push_str(&numbers_line(id, &body.spaced));
            text.push('\n');
            let original = format!("{{\"fuzz_id\":{id},{}}}", body.compact);
            let jsonb = client
                .query_one("SELECT ($1::text)::jsonb::text", &[&original])
                .map(|row| row.get::<_, String>(0));
            expected.push(jsonb.ok());
        }
        std::fs::write(&file, &text).unwrap();
        let args = [
            "load",
            "--shape",
            "generic",
            "--format",
            "json",
            "--rejects",
            rejects.to_str().unwrap(),
            file.to_str().unwrap(),
        ];
        let output = db.logctl(&args).output().unwrap();
        let refused: Vec<u64> = expected
            .iter()
            .enumerate()
            .filter(|(_, jsonb)| jsonb.is_none())
            .map(|(index, _)| index as u64 + 1)
            .collect();
        prop_assert_eq!(
            output.status.code(),
            Some(if refused.is_empty() { 0 } else { 4 }),
            "stderr: {}",
            stderr(&output)
        );
        let records: Vec<Value> = std::fs::read_to_string(&rejects)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut rejected: Vec<u64> = records
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        rejected.sort();
        prop_assert_eq!(&rejected, &refused, "rejects: {:#?}", records);
        for record in &records {
            prop_assert!(
                record["reason"].as_str().unwrap().contains(BEYOND_JSONB),
                "{}",
                record
            );
        }
        let rows = client
            .query(
                "SELECT (metadata->>'fuzz_id')::int, metadata::text FROM log_events",
                &[],
            )
            .unwrap();
        prop_assert_eq!(rows.len(), expected.len() - refused.len());
        for row in rows {
            let id: i32 = row.get(0);
            let stored: String = row.get(1);
            let jsonb = expected[id as usize].as_deref().unwrap();
            prop_assert!(
                stored == jsonb,
                "line {}: {}\nstored:   {}\nexpected: {}",
                id + 1,
                numbers_line(id as usize, &bodies[id as usize].spaced),
                stored,
                jsonb
            );
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
