//! Hostile input for `logctl load`: one test per kind of bad line, each in a file
//! where good lines surround it, checking exactly which lines reached the database
//! (by their message) and which were rejected, with which reason, line number, byte
//! offset and text, so a bad line is shown to cost nothing but itself.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::*;

/// A file under construction: its bytes and where each line starts.
struct Corpus {
    bytes: Vec<u8>,
    /// Each line's content (without its line ending) and byte offset, by line number - 1.
    lines: Vec<(Vec<u8>, u64)>,
}

impl Corpus {
    fn new() -> Corpus {
        Corpus {
            bytes: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// A file of these lines, each ended by `\n`.
    fn of(lines: &[&[u8]]) -> Corpus {
        let mut corpus = Corpus::new();
        for line in lines {
            corpus.line(line);
        }
        corpus
    }

    fn line(&mut self, content: &[u8]) -> &mut Corpus {
        self.line_ending(content, b"\n")
    }

    fn line_ending(&mut self, content: &[u8], ending: &[u8]) -> &mut Corpus {
        self.lines.push((content.to_vec(), self.bytes.len() as u64));
        self.bytes.extend_from_slice(content);
        self.bytes.extend_from_slice(ending);
        self
    }

    /// The 1-based line number of the line added last.
    fn last(&self) -> u64 {
        self.lines.len() as u64
    }

    fn offset(&self, line: u64) -> u64 {
        self.lines[line as usize - 1].1
    }

    fn text(&self, line: u64) -> &[u8] {
        &self.lines[line as usize - 1].0
    }
}

/// Good line number `n`: its message is `good n`, and its time is unique and increasing,
/// so the loaded messages in time order show that nothing was lost or reordered.
fn good(n: u32) -> String {
    let time = chrono::DateTime::from_timestamp(1_795_514_400 + i64::from(n), 0).unwrap();
    format!(
        r#"{{"ts":"{}","service":"api","level":"info","msg":"good {n}","latency_ms":{n}}}"#,
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn goods(numbers: impl IntoIterator<Item = u32>) -> Vec<String> {
    numbers.into_iter().map(|n| format!("good {n}")).collect()
}

/// A line that would be good but for `field`, which is spliced in as raw JSON text.
fn with_field(message: &str, field: &str) -> String {
    format!(r#"{{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"{message}",{field}}}"#)
}

/// What a load did.
struct Loaded {
    output: Output,
    file: PathBuf,
    /// The reject records, in line order.
    rejects: Vec<serde_json::Value>,
    summary: serde_json::Value,
}

/// Loads `corpus` as a file of its own, rejects to a file, summary as JSON.
fn load(db: &TestDb, corpus: &Corpus, extra: &[&str]) -> Loaded {
    let dir = scratch_dir(&db.name);
    let file = dir.join("input.ndjson");
    std::fs::write(&file, &corpus.bytes).unwrap();
    let rejects_path = dir.join("rejects.ndjson");
    let mut args = vec![
        "load",
        "--format",
        "json",
        "--rejects",
        rejects_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let output = db.logctl(&args).output().unwrap();
    let err = stderr(&output);
    assert!(
        !err.contains("panicked"),
        "logctl panicked on hostile input:\n{err}"
    );
    let mut rejects: Vec<serde_json::Value> = std::fs::read_to_string(&rejects_path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a reject record is one JSON object"))
        .collect();
    rejects.sort_by_key(|record| record["line"].as_u64());
    let summary = serde_json::from_str(stdout(&output).trim())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{}\n{err}", stdout(&output)));
    Loaded {
        output,
        file,
        rejects,
        summary,
    }
}

/// The messages in the database, in time order.
fn messages(db: &TestDb) -> Vec<String> {
    db.query("SELECT message FROM log_events ORDER BY created_at, message")
        .iter()
        .map(|row| row.get::<_, Option<String>>(0).unwrap_or_default())
        .collect()
}

/// Checks the reject records: exactly these lines, each with its offset, its text and
/// a reason containing every fragment given for it.
fn assert_rejects(loaded: &Loaded, corpus: &Corpus, expected: &[(u64, &[&str])]) {
    let lines: Vec<u64> = loaded
        .rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    let expected_lines: Vec<u64> = expected.iter().map(|(line, _)| *line).collect();
    assert_eq!(
        lines, expected_lines,
        "rejected lines; records: {:#?}",
        loaded.rejects
    );
    for (record, (line, fragments)) in loaded.rejects.iter().zip(expected) {
        assert_eq!(record["file"], loaded.file.to_str().unwrap(), "{record}");
        assert_eq!(
            record["offset"].as_u64(),
            Some(corpus.offset(*line)),
            "offset of line {line}: {record}"
        );
        let reason = record["reason"].as_str().unwrap();
        for fragment in *fragments {
            assert!(
                reason.contains(fragment),
                "line {line}: reason `{reason}` lacks `{fragment}`"
            );
        }
        let text = record["text"].as_str().unwrap();
        let original = String::from_utf8_lossy(corpus.text(*line));
        assert_eq!(
            text.trim_end_matches('\r'),
            original.trim_end_matches('\r'),
            "text of line {line}"
        );
    }
}

fn assert_counts(loaded: &Loaded, lines: u64, loaded_rows: u64, rejected: u64, blank: u64) {
    let summary = &loaded.summary;
    assert_eq!(
        (
            summary["lines_read"].as_u64(),
            summary["loaded"].as_u64(),
            summary["rejected"].as_u64(),
            summary["blank"].as_u64()
        ),
        (Some(lines), Some(loaded_rows), Some(rejected), Some(blank)),
        "lines_read, loaded, rejected, blank in {summary}"
    );
}

/// The common case: good 1, good 2, BAD, good 3, good 4; the bad line is rejected with
/// a reason containing `fragments` and the four good lines are loaded.
fn rejected_among_good_lines(tag: &str, bad: &[u8], fragments: &[&str]) {
    let db = TestDb::with_schema(tag);
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        good(2).as_bytes(),
        bad,
        good(3).as_bytes(),
        good(4).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=4));
    assert_rejects(&loaded, &corpus, &[(3, fragments)]);
    assert_counts(&loaded, 5, 4, 1, 0);
}

// ---- Not JSON -------------------------------------------------------------------

#[test]
fn invalid_json_text() {
    rejected_among_good_lines("json_text", b"this is not json", &["not JSON"]);
}

#[test]
fn invalid_json_truncated_object() {
    rejected_among_good_lines(
        "json_truncated",
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"cut"#,
        &["not JSON"],
    );
}

#[test]
fn invalid_json_trailing_garbage_after_the_object() {
    rejected_among_good_lines(
        "json_trailing",
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"x"} trailing"#,
        &["not JSON"],
    );
}

#[test]
fn invalid_json_two_objects_on_one_line() {
    rejected_among_good_lines(
        "json_two",
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api"}{"ts":"2026-11-24T12:00:01Z","service":"api"}"#,
        &["not JSON"],
    );
}

#[test]
fn invalid_json_single_quotes() {
    rejected_among_good_lines(
        "json_quotes",
        b"{'ts':'2026-11-24T12:00:00Z','service':'api'}",
        &["not JSON"],
    );
}

#[test]
fn invalid_json_unescaped_control_character_in_a_string() {
    rejected_among_good_lines(
        "json_control",
        b"{\"ts\":\"2026-11-24T12:00:00Z\",\"service\":\"api\",\"msg\":\"tab\there\"}",
        &["not JSON"],
    );
}

// ---- JSON, but not an object ------------------------------------------------------

#[test]
fn not_an_object_array() {
    rejected_among_good_lines(
        "array",
        br#"[{"ts":"2026-11-24T12:00:00Z","service":"api"}]"#,
        &["JSON array, not an object"],
    );
}

#[test]
fn not_an_object_string() {
    rejected_among_good_lines(
        "string",
        br#""2026-11-24T12:00:00Z api hello""#,
        &["JSON string, not an object"],
    );
}

#[test]
fn not_an_object_number() {
    rejected_among_good_lines("number", b"42", &["JSON number, not an object"]);
}

#[test]
fn not_an_object_null() {
    rejected_among_good_lines("null", b"null", &["JSON null, not an object"]);
}

// ---- Bad bytes ----------------------------------------------------------------------

#[test]
fn invalid_utf8_inside_a_string() {
    let db = TestDb::with_schema("utf8");
    let line = |bytes: &[u8]| {
        let mut line = br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"bad "#.to_vec();
        line.extend_from_slice(bytes);
        line.extend_from_slice(br#" bytes"}"#);
        line
    };
    // A lone continuation byte, 0xFF, an overlong '/', a truncated euro sign followed
    // by ASCII, and an encoded surrogate (U+D800).
    let bad: Vec<Vec<u8>> = [
        &b"\x80"[..],
        b"\xff\xfe",
        b"\xc0\xaf",
        b"\xe2\x82x",
        b"\xed\xa0\x80",
    ]
    .iter()
    .map(|bytes| line(bytes))
    .collect();
    let mut corpus = Corpus::new();
    let mut expected = Vec::new();
    corpus.line(good(1).as_bytes());
    for (index, bad) in bad.iter().enumerate() {
        corpus.line(bad);
        expected.push(corpus.last());
        corpus.line(good(2 + index as u32).as_bytes());
    }
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=6));
    let reasons: &[&str] = &["not valid UTF-8"];
    let expected: Vec<(u64, &[&str])> = expected.iter().map(|line| (*line, reasons)).collect();
    assert_rejects(&loaded, &corpus, &expected);
    for record in &loaded.rejects {
        assert_eq!(record["text_is_lossy"], true, "{record}");
    }
}

// ---- U+0000 -------------------------------------------------------------------------

const NUL_VALUE: &[u8] =
    br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"a\u0000b","extra":{"deep":["x\u0000y"]}}"#;
const NUL_NESTED_VALUE: &[u8] =
    br#"{"ts":"2026-11-24T12:00:01Z","service":"api","msg":"nested","extra":{"deep":["x\u0000y"]}}"#;
const NUL_KEY: &[u8] =
    br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"keyed","k\u0000ey":"v"}"#;
const NUL_SERVICE: &[u8] = br#"{"ts":"2026-11-24T12:00:00Z","service":"ap\u0000i","msg":"served"}"#;
const RAW_NUL: &[u8] = b"{\"ts\":\"2026-11-24T12:00:00Z\",\"service\":\"api\",\"msg\":\"a\0b\"}";

/// good 1, the NUL line, good 2: rejected by default, naming U+0000 and --strip-nul.
fn nul_rejected(tag: &str, bad: &[u8]) {
    let db = TestDb::with_schema(tag);
    let corpus = Corpus::of(&[good(1).as_bytes(), bad, good(2).as_bytes()]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=2));
    assert_rejects(&loaded, &corpus, &[(2, &["U+0000", "--strip-nul"])]);
    assert_eq!(db.count("SELECT count(*) FROM services"), 1);
}

/// The same file with --strip-nul: all three lines load; returns the NUL line's row
/// as (service, message, metadata).
fn nul_stripped(tag: &str, bad: &[u8]) -> (String, String, serde_json::Value) {
    let db = TestDb::with_schema(tag);
    let corpus = Corpus::of(&[good(1).as_bytes(), bad, good(2).as_bytes()]);
    let loaded = load(&db, &corpus, &["--strip-nul"]);
    assert_exit(&loaded.output, 0);
    assert!(loaded.rejects.is_empty(), "{:#?}", loaded.rejects);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3);
    let rows = db.query(
        "SELECT s.service_name, l.message, l.metadata::text FROM log_events l \
         JOIN services s USING (service_id) WHERE l.message NOT LIKE 'good %'",
    );
    assert_eq!(rows.len(), 1);
    (
        rows[0].get(0),
        rows[0].get(1),
        serde_json::from_str(&rows[0].get::<_, String>(2)).unwrap(),
    )
}

#[test]
fn escaped_nul_in_a_value_is_rejected_by_default() {
    nul_rejected("nul_value", NUL_VALUE);
}

#[test]
fn escaped_nul_in_a_nested_metadata_value_is_rejected_by_default() {
    nul_rejected("nul_nested", NUL_NESTED_VALUE);
}

#[test]
fn escaped_nul_in_a_key_is_rejected_by_default() {
    nul_rejected("nul_key", NUL_KEY);
}

#[test]
fn escaped_nul_in_the_service_is_rejected_by_default() {
    nul_rejected("nul_service", NUL_SERVICE);
}

#[test]
fn raw_nul_byte_is_rejected_by_default_as_u0000() {
    nul_rejected("nul_raw", RAW_NUL);
}

#[test]
fn escaped_nul_in_a_value_is_dropped_with_strip_nul() {
    let (service, message, metadata) = nul_stripped("strip_value", NUL_VALUE);
    assert_eq!(service, "api");
    assert_eq!(message, "ab");
    assert_eq!(metadata, serde_json::json!({"extra": {"deep": ["xy"]}}));
}

#[test]
fn escaped_nul_in_a_key_is_dropped_with_strip_nul() {
    let (_, message, metadata) = nul_stripped("strip_key", NUL_KEY);
    assert_eq!(message, "keyed");
    assert_eq!(metadata, serde_json::json!({"key": "v"}));
}

#[test]
fn escaped_nul_in_the_service_is_dropped_with_strip_nul() {
    let (service, message, _) = nul_stripped("strip_service", NUL_SERVICE);
    assert_eq!((service.as_str(), message.as_str()), ("api", "served"));
}

#[test]
fn raw_nul_byte_is_dropped_with_strip_nul() {
    let (_, message, _) = nul_stripped("strip_raw", RAW_NUL);
    assert_eq!(message, "ab");
}

/// A service that is nothing but U+0000 is empty once stripped, and an empty service
/// is rejected like `"service":""`, not stored as a service named "".
#[test]
fn a_service_of_only_nul_is_empty_after_strip_nul() {
    let db = TestDb::with_schema("strip_empty_service");
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        br#"{"ts":"2026-11-24T12:00:00Z","service":"\u0000","msg":"nameless"}"#,
        br#"{"ts":"2026-11-24T12:00:00Z","service":" \u0000 ","msg":"nameless"}"#,
        good(2).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &["--strip-nul"]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=2));
    assert_rejects(&loaded, &corpus, &[(2, &["empty"]), (3, &["empty"])]);
    assert_eq!(
        db.count("SELECT count(*) FROM services WHERE btrim(service_name) = ''"),
        0
    );
}

// ---- Wrong types and values ---------------------------------------------------------

#[test]
fn latency_that_is_a_word() {
    rejected_among_good_lines(
        "latency_word",
        with_field("slow", r#""latency_ms":"fast""#).as_bytes(),
        &["`latency_ms`", "\"fast\""],
    );
}

#[test]
fn status_out_of_the_http_range() {
    rejected_among_good_lines(
        "status_range",
        with_field("odd", r#""status":99999"#).as_bytes(),
        &["`status`", "99999", "100-599"],
    );
}

#[test]
fn negative_latency() {
    rejected_among_good_lines(
        "latency_negative",
        with_field("backwards", r#""latency_ms":-5"#).as_bytes(),
        &["`latency_ms`", "negative", "-5"],
    );
}

#[test]
fn latency_over_the_integer_range() {
    rejected_among_good_lines(
        "latency_huge",
        with_field("forever", r#""latency_ms":3000000000"#).as_bytes(),
        &["`latency_ms`", "3000000000", "integer range"],
    );
}

#[test]
fn status_that_is_a_boolean() {
    rejected_among_good_lines(
        "status_bool",
        with_field("truthy", r#""status":true"#).as_bytes(),
        &["`status`", "boolean"],
    );
}

#[test]
fn message_that_is_an_object() {
    rejected_among_good_lines(
        "message_object",
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":{"text":"hi"}}"#,
        &["`msg`", "string", "object"],
    );
}

#[test]
fn timestamp_that_is_not_a_time() {
    rejected_among_good_lines(
        "ts_word",
        br#"{"ts":"not a time","service":"api","msg":"when?"}"#,
        &["`ts`", "not a time", "not RFC 3339"],
    );
}

#[test]
fn timestamp_on_a_day_that_does_not_exist() {
    rejected_among_good_lines(
        "ts_feb30",
        br#"{"ts":"2026-02-30T12:00:00Z","service":"api","msg":"when?"}"#,
        &["`ts`", "2026-02-30"],
    );
}

#[test]
fn timestamp_that_is_a_boolean() {
    rejected_among_good_lines(
        "ts_bool",
        br#"{"ts":true,"service":"api","msg":"when?"}"#,
        &["`ts`", "boolean"],
    );
}

#[test]
fn missing_service() {
    rejected_among_good_lines(
        "no_service",
        br#"{"ts":"2026-11-24T12:00:00Z","msg":"who?","latency_ms":5}"#,
        &["no service", "service"],
    );
}

#[test]
fn empty_service() {
    rejected_among_good_lines(
        "empty_service",
        br#"{"ts":"2026-11-24T12:00:00Z","service":"  ","msg":"who?"}"#,
        &["`service`", "empty"],
    );
}

/// Valid JSON whose numbers are beyond 64 bits (a 128-bit id, 1e400) in a field no
/// column reads: the line is valid and PostgreSQL's jsonb stores such numbers, so it
/// must load rather than be rejected as "invalid JSON".
#[test]
fn numbers_beyond_64_bits_in_metadata_do_not_cost_the_line() {
    let db = TestDb::with_schema("big_numbers");
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"big","trace":123456789012345678901234567890}"#,
        br#"{"ts":"2026-11-24T12:00:01Z","service":"api","msg":"huge","ratio":1e400}"#,
        br#"{"ts":"2026-11-24T12:00:02Z","service":"api","msg":"low","delta":-9223372036854775809}"#,
        good(2).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert!(loaded.rejects.is_empty(), "{:#?}", loaded.rejects);
    assert_success(&loaded.output);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 5);
    let kept: Vec<String> = db
        .query("SELECT coalesce(metadata->>'trace', metadata->>'delta', metadata->>'ratio') FROM log_events WHERE message IN ('big', 'huge', 'low') ORDER BY message")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kept,
        [
            "123456789012345678901234567890".to_string(),
            format!("1{}", "0".repeat(400)),
            "-9223372036854775809".to_string()
        ]
    );
}

// ---- Numbers as written ---------------------------------------------------------------

/// The metadata of lines that are `{"ts":...,"service":"api","msg":"numbers N",` + body
/// + `}`: what jsonb makes of `{` + body + `}`.
fn numbers_line(n: usize, body: &str) -> String {
    format!(r#"{{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"numbers {n}",{body}}}"#)
}

/// Every number jsonb accepts is stored as jsonb itself stores it, digit for digit
/// (`1.50` keeps its zero, `1E+2` becomes 100, `1e400` all its zeros), nested or not,
/// beside strings that look the same: for each line, `metadata::text` equals what
/// PostgreSQL gives for the original line minus the keys that became columns.
#[test]
fn metadata_keeps_every_number_as_written() {
    let bodies = [
        r#""huge":1e400,"negative_huge":-1e400,"tiny":1e-400,"negative_tiny":-1e-400"#,
        r#""integer_40":1234567890123456789012345678901234567890,"negative_40":-1234567890123456789012345678901234567890"#,
        r#""decimal_40":3.141592653589793238462643383279502884197,"pi":3.14159265358979323846264338327950288"#,
        r#""trailing_zero":1.50,"exponent":1E+2,"both":1.50e2,"scaled":100e-2,"tenth":0.1,"seven":1E-7"#,
        r#""minus_zero":-0,"minus_zero_float":-0.0,"zero_exponent":0e-5,"integer_30":123456789012345678901234567890"#,
        r#""i64":-9223372036854775809,"u64":18446744073709551616,"below_i128":-170141183460469231731687303715884105729,"above_u128":340282366920938463463374607431768211456"#,
        r#""f64_max":1.7976931348623157e308,"past_f64_max":1.7976931348623159e308,"denormal":5e-324,"below_denormal":2e-324,"round":2.5e10"#,
        r#""nested":{"a":[1e400,-0,1.50,[2.5e10,{"b":1e-400}]],"c":{"d":123456789012345678901234567890123456789012345}},"empty":[[],{}]"#,
        r#""looks_like":"1e400","also":"1.50","pair":["1e400",1e400,"0.10",0.10],"key 1e400":-0.000"#,
        r#" "spaced" : [ 1.0 , 2.50e-3 , { "x" : 1e400 } ] , "after" : 7 "#,
        r#""widest":9.9e131071,"finest":1e-16383,"zeros":0.000e131072"#,
    ];
    let db = TestDb::with_schema("numbers_as_written");
    let lines: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| numbers_line(n, body))
        .collect();
    let corpus = Corpus::of(&lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>());
    let loaded = load(&db, &corpus, &[]);
    assert!(loaded.rejects.is_empty(), "{:#?}", loaded.rejects);
    assert_success(&loaded.output);
    let mut client = db.client();
    for (n, body) in bodies.iter().enumerate() {
        let row = client
            .query_one(
                "SELECT metadata::text, ($1::text)::jsonb::text FROM log_events WHERE message = $2",
                &[&format!("{{{body}}}"), &format!("numbers {n}")],
            )
            .unwrap();
        let (stored, expected): (String, String) = (row.get(0), row.get(1));
        assert!(
            stored == expected,
            "line {}: {}\nstored:   {}\nexpected: {}",
            n + 1,
            lines[n],
            numbers_shortened(&stored),
            numbers_shortened(&expected)
        );
    }
}

/// A Docker line's inner JSON, parsed on its own, keeps its numbers as written too.
#[test]
fn numbers_inside_a_docker_line_are_kept_as_written() {
    let db = TestDb::with_schema("numbers_docker");
    let corpus = Corpus::of(&[
        br#"{"log":"{\"msg\":\"inner\",\"n\":1e400,\"m\":[0.10,-0,1E+2]}\n","stream":"stdout","time":"2026-11-24T12:00:00Z"}"#,
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert!(loaded.rejects.is_empty(), "{:#?}", loaded.rejects);
    let row = db
        .client()
        .query_one(
            "SELECT metadata::text, $1::text::jsonb::text FROM log_events WHERE message = 'inner'",
            &[&r#"{"n":1e400,"m":[0.10,-0,1E+2],"stream":"stdout"}"#],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), row.get::<_, String>(1));
}

/// A long metadata text cut for a failure message.
fn numbers_shortened(text: &str) -> String {
    if text.len() <= 600 {
        return text.to_string();
    }
    format!("{} … {}", &text[..300], &text[text.len() - 300..])
}

/// Numbers in the typed columns keep the columns' rules: what the column cannot hold is
/// a reject quoting the number as written; a status of 200.0000000000000000001 is 200.
#[test]
fn numbers_beyond_64_bits_in_typed_columns_keep_their_rules() {
    let db = TestDb::with_schema("numbers_typed");
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        with_field("forever", r#""latency_ms":1e400"#).as_bytes(),
        with_field("backwards", r#""latency_ms":-1e400"#).as_bytes(),
        with_field("odd", r#""status":1e400"#).as_bytes(),
        br#"{"ts":1e400,"service":"api","msg":"when?"}"#,
        br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"ok","status":200.0000000000000000001,"latency_ms":12.50}"#,
        good(2).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_rejects(
        &loaded,
        &corpus,
        &[
            (2, &["`latency_ms`", "1e400", "integer range"]),
            (3, &["`latency_ms`", "negative", "-1e400"]),
            (4, &["`status`", "1e400"]),
            (5, &["`ts`", "1e400", "out of range"]),
        ],
    );
    let row = db
        .client()
        .query_one(
            "SELECT status::int, latency_ms, metadata::text FROM log_events WHERE message = 'ok'",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 200);
    assert_eq!(row.get::<_, i32>(1), 13);
    assert_eq!(
        row.get::<_, String>(2),
        r#"{"status": 200, "latency_ms": 13}"#
    );
}

/// Numbers jsonb's numeric cannot hold (an exponent past its 131072 digits before the
/// point or 16383 after it) are rejected by the encoder with a reason, and cost nothing
/// else; a malformed number is not JSON.
#[test]
fn numbers_jsonb_cannot_hold_are_rejected() {
    let db = TestDb::with_schema("numbers_refused");
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        with_field("big", r#""x":1e1000000"#).as_bytes(),
        with_field("small", r#""x":[1e-1000000]"#).as_bytes(),
        with_field("scale", r#""x":{"y":0e-16384}"#).as_bytes(),
        with_field("weight", r#""x":1e131072"#).as_bytes(),
        with_field("exponent", r#""x":-0e99999999999"#).as_bytes(),
        with_field("leading zero", r#""x":01"#).as_bytes(),
        good(2).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=2));
    let beyond = "beyond what PostgreSQL's jsonb can store";
    assert_rejects(
        &loaded,
        &corpus,
        &[
            (2, &["1e1000000", beyond]),
            (3, &["1e-1000000", beyond]),
            (4, &["0e-16384", beyond]),
            (5, &["1e131072", beyond]),
            (6, &["-0e99999999999", beyond]),
            (7, &["not JSON", "a number in JSON's form"]),
        ],
    );
    assert_counts(&loaded, 8, 2, 6, 0);
}

// ---- Nesting --------------------------------------------------------------------------

fn nested_objects(levels: usize) -> String {
    format!(
        r#"{{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"deep {levels}","x":{}1{}}}"#,
        r#"{"a":"#.repeat(levels),
        "}".repeat(levels)
    )
}

#[test]
fn nesting_200_levels_deep_is_rejected() {
    let db = TestDb::with_schema("deep_200");
    let arrays = format!(
        r#"{{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"deep arrays","x":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        nested_objects(200).as_bytes(),
        good(2).as_bytes(),
        arrays.as_bytes(),
        good(3).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=3));
    assert_rejects(
        &loaded,
        &corpus,
        &[(2, &["nested deeper"]), (4, &["nested deeper"])],
    );
}

#[test]
fn nesting_50_levels_deep_is_loaded_whole() {
    let db = TestDb::with_schema("deep_50");
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        nested_objects(50).as_bytes(),
        good(2).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 0);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 3);
    let text: String =
        db.query("SELECT metadata::text FROM log_events WHERE message = 'deep 50'")[0].get(0);
    let metadata: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut value = &metadata["x"];
    for _ in 0..50 {
        value = &value["a"];
    }
    assert_eq!(value, &serde_json::json!(1), "{text}");
}

// ---- Long lines -----------------------------------------------------------------------

/// A valid line of exactly `length` bytes.
fn long_line(length: usize) -> String {
    let head = r#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":""#;
    let tail = r#""}"#;
    format!(
        "{head}{}{tail}",
        "x".repeat(length - head.len() - tail.len())
    )
}

/// good 1, an oversized line, good 2, a bad line, good 3: the long line is rejected
/// with a prefix of its text, and what follows it keeps its line numbers and offsets.
fn oversized(tag: &str, length: usize, limit: usize, extra: &[&str]) {
    let db = TestDb::with_schema(tag);
    let long = long_line(length);
    let corpus = Corpus::of(&[
        good(1).as_bytes(),
        long.as_bytes(),
        good(2).as_bytes(),
        b"{not json",
        good(3).as_bytes(),
    ]);
    let loaded = load(&db, &corpus, extra);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=3));
    let limit_text = format!("limit of {limit}");
    let lines: Vec<u64> = loaded
        .rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4], "{:?}", loaded.rejects);
    let record = &loaded.rejects[0];
    assert_eq!(record["offset"].as_u64(), Some(corpus.offset(2)));
    let reason = record["reason"].as_str().unwrap();
    assert!(reason.contains(&limit_text), "{reason}");
    let text = record["text"].as_str().unwrap();
    assert!(
        !text.is_empty() && long.starts_with(text),
        "the reject's text is the start of the line"
    );
    assert!(
        text.len() <= 1024,
        "the reject's text is only a prefix, not all {} bytes (got {} bytes)",
        long.len(),
        text.len()
    );
    let after = &loaded.rejects[1];
    assert_eq!(after["offset"].as_u64(), Some(corpus.offset(4)));
    assert_eq!(after["text"], "{not json");
    assert_counts(&loaded, 5, 3, 2, 0);
    assert!(
        reason.contains(&format!("line is {length} bytes")),
        "the reason gives the line's length, {length}: {reason}"
    );
}

#[test]
fn line_over_a_small_max_line_bytes() {
    oversized("long_5k", 5 * 1024, 1024, &["--max-line-bytes", "1KiB"]);
}

#[test]
fn line_of_3_mib_over_the_default_limit() {
    oversized("long_3m", 3 << 20, 1 << 20, &[]);
}

/// With batches smaller than the line, the reader meets it without a newline in its
/// buffer and skips it while streaming, a different path to the same outcome.
#[test]
fn line_of_3_mib_over_the_default_limit_with_small_batches() {
    oversized(
        "long_3m_stream",
        3 << 20,
        1 << 20,
        &["--batch-bytes", "64KiB"],
    );
}

// ---- Blank lines, BOM, CRLF -----------------------------------------------------------

#[test]
fn empty_and_whitespace_lines_are_skipped_silently() {
    let db = TestDb::with_schema("blank");
    let corpus = Corpus::of(&[
        b"",
        good(1).as_bytes(),
        b"",
        b"   ",
        good(2).as_bytes(),
        b"\t \t",
        b" \r",
        good(3).as_bytes(),
        b"",
    ]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 0);
    assert_eq!(messages(&db), goods(1..=3));
    assert!(loaded.rejects.is_empty(), "{:#?}", loaded.rejects);
    assert_counts(&loaded, 9, 3, 0, 6);
}

#[test]
fn a_byte_order_mark_at_the_start_of_the_file() {
    let db = TestDb::with_schema("bom");
    let mut first = b"\xEF\xBB\xBF".to_vec();
    first.extend_from_slice(good(1).as_bytes());
    let corpus = Corpus::of(&[&first, b"{not json", good(2).as_bytes()]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=2));
    // The BOM's three bytes count in the offsets that follow.
    assert_eq!(corpus.offset(2), 3 + good(1).len() as u64 + 1);
    assert_rejects(&loaded, &corpus, &[(2, &["not JSON"])]);
    let service: String = db.query("SELECT service_name FROM services")[0].get(0);
    assert_eq!(service, "api");
}

#[test]
fn crlf_line_endings() {
    let db = TestDb::with_schema("crlf");
    let mut corpus = Corpus::new();
    corpus
        .line_ending(good(1).as_bytes(), b"\r\n")
        .line_ending(
            br#"{"ts":"2026-11-24T12:00:00Z","service":"api","msg":"ends"}"#,
            b"\r\n",
        )
        .line_ending(b"{not json", b"\r\n")
        .line_ending(b"", b"\r\n")
        .line_ending(good(2).as_bytes(), b"\r\n");
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), ["good 1", "good 2", "ends"]);
    assert_rejects(&loaded, &corpus, &[(3, &["not JSON"])]);
    assert_counts(&loaded, 5, 3, 1, 1);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM log_events WHERE position(chr(13) IN message) > 0 \
             OR position('\\r' IN metadata::text) > 0"
        ),
        0
    );
}

// ---- Garbage --------------------------------------------------------------------------

/// splitmix64: a fixed, dependency-free stream of random bytes.
fn random_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// Whether logctl counts a line as blank: whitespace only once a BOM and a CR are dropped.
fn is_blank(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.iter().all(u8::is_ascii_whitespace)
}

#[test]
fn binary_garbage_between_good_lines() {
    let db = TestDb::with_schema("garbage");
    let garbage = random_bytes(0x6c6f_6763_746c, 64 * 1024);
    let mut corpus = Corpus::new();
    let mut expected_rejects = Vec::new();
    let mut blank = 0;
    let mut good_count = 0;
    corpus.line(good(0).as_bytes());
    for piece in garbage.chunks(4096) {
        for line in piece.split(|&b| b == b'\n') {
            corpus.line(line);
            if is_blank(line) {
                blank += 1;
            } else {
                expected_rejects.push(corpus.last());
            }
        }
        good_count += 1;
        corpus.line(good(good_count).as_bytes());
    }
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(0..=good_count));
    let no_fragments: &[&str] = &[];
    let expected: Vec<(u64, &[&str])> = expected_rejects
        .iter()
        .map(|line| (*line, no_fragments))
        .collect();
    assert_rejects(&loaded, &corpus, &expected);
    assert_counts(
        &loaded,
        corpus.last(),
        u64::from(good_count) + 1,
        expected_rejects.len() as u64,
        blank,
    );
}

// ---- Rows the server refuses ----------------------------------------------------------

/// Whether log_events already holds a row when the load starts: a load into an empty
/// table may rebuild the indexes in one transaction instead of committing batch by batch,
/// and a refused row must cost only itself either way.
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Empty,
    WithRows,
}

/// 2000 good lines (one batch) with two 418s at lines 500 and 1500; `setup` teaches the
/// database to refuse them. Those two are rejected with the server's message, containing
/// `fragment`, and every other line is committed, with the ledger agreeing.
fn refused_by_the_server(tag: &str, table: Table, setup: &str, fragment: &str) {
    let db = TestDb::with_schema(tag);
    let first = u32::from(table == Table::Empty);
    if table == Table::WithRows {
        let earlier = scratch_dir(&format!("{}_earlier", db.name)).join("earlier.ndjson");
        std::fs::write(&earlier, format!("{}\n", good(0))).unwrap();
        assert_success(
            &db.logctl(&["load", "--quiet", earlier.to_str().unwrap()])
                .output()
                .unwrap(),
        );
    }
    db.client().batch_execute(setup).unwrap();
    let mut corpus = Corpus::new();
    let mut teapots = Vec::new();
    for n in 1..=2000u32 {
        if n == 500 || n == 1500 {
            corpus.line(
                format!(
                    r#"{{"ts":"2026-11-24T13:00:00Z","service":"api","msg":"teapot","status":418,"n":{n}}}"#
                )
                .as_bytes(),
            );
            teapots.push(corpus.last());
        }
        corpus.line(good(n).as_bytes());
    }
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(first..=2000));
    let fragments: &[&str] = &[fragment];
    let expected: Vec<(u64, &[&str])> = teapots.iter().map(|line| (*line, fragments)).collect();
    assert_rejects(&loaded, &corpus, &expected);
    assert_counts(&loaded, 2002, 2000, 2, 0);
    let ledger = db.query(
        "SELECT sum(loaded_rows)::bigint, sum(rejected_lines)::bigint, min(start_line), max(end_line) \
         FROM logctl_ranges",
    );
    assert_eq!(
        (
            ledger[0].get::<_, i64>(0),
            ledger[0].get::<_, i64>(1),
            ledger[0].get::<_, i64>(2),
            ledger[0].get::<_, i64>(3)
        ),
        (2000 + i64::from(1 - first), 2, 1, 2003)
    );
    // The refused rows are not counted either: their batch's rollups were computed again.
    assert_rollups_match(&db);
}

const NO_TEAPOT_CHECK: &str =
    "ALTER TABLE log_events ADD CONSTRAINT no_teapot CHECK (status IS DISTINCT FROM 418)";

/// A trigger's RAISE comes with the trigger's own context frame and SQLSTATE P0001,
/// not a data or integrity error code.
const NO_TEAPOT_BEFORE_TRIGGER: &str = "CREATE FUNCTION refuse_teapot() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF NEW.message = 'teapot' THEN RAISE EXCEPTION 'no teapots here (%)', NEW.metadata->>'n'; END IF; \
       RETURN NEW; \
     END $$; \
     CREATE TRIGGER refuse_teapot BEFORE INSERT ON log_events \
       FOR EACH ROW EXECUTE FUNCTION refuse_teapot();";

/// AFTER ROW triggers fire once COPY has read every row, so the error names no COPY
/// line: the loader has to find the refused rows by narrowing the batch down.
const NO_TEAPOT_AFTER_TRIGGER: &str = "CREATE FUNCTION refuse_teapot() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF NEW.status = 418 THEN \
         RAISE EXCEPTION 'no teapots after all' USING ERRCODE = 'check_violation'; \
       END IF; \
       RETURN NULL; \
     END $$; \
     CREATE TRIGGER refuse_teapot AFTER INSERT ON log_events \
       FOR EACH ROW EXECUTE FUNCTION refuse_teapot();";

#[test]
fn rows_refused_by_a_check_constraint_the_loader_does_not_know() {
    refused_by_the_server("refused_check", Table::Empty, NO_TEAPOT_CHECK, "no_teapot");
}

#[test]
fn rows_refused_by_a_check_constraint_in_a_table_with_rows() {
    refused_by_the_server(
        "refused_check_rows",
        Table::WithRows,
        NO_TEAPOT_CHECK,
        "no_teapot",
    );
}

#[test]
fn rows_refused_by_a_before_insert_trigger() {
    refused_by_the_server(
        "refused_trigger",
        Table::Empty,
        NO_TEAPOT_BEFORE_TRIGGER,
        "no teapots here",
    );
}

#[test]
fn rows_refused_by_a_before_insert_trigger_in_a_table_with_rows() {
    refused_by_the_server(
        "refused_trigger_rows",
        Table::WithRows,
        NO_TEAPOT_BEFORE_TRIGGER,
        "no teapots here",
    );
}

#[test]
fn rows_refused_by_an_after_insert_trigger_that_names_no_line() {
    refused_by_the_server(
        "refused_after",
        Table::Empty,
        NO_TEAPOT_AFTER_TRIGGER,
        "no teapots after all",
    );
}

#[test]
fn rows_refused_by_an_after_insert_trigger_in_a_table_with_rows() {
    refused_by_the_server(
        "refused_after_rows",
        Table::WithRows,
        NO_TEAPOT_AFTER_TRIGGER,
        "no teapots after all",
    );
}

// ---- Refused by the server for one line's sake, on every strategy and variant ---------

/// The variants a load can meet: an empty plain table (indexes rebuilt in one
/// transaction), a plain table with rows (indexes kept), a partitioned one.
const VARIANTS: [(&str, &[&str], bool); 3] = [
    ("empty", &[], false),
    ("rows", &[], true),
    ("part", &["--partition", "day"], false),
];

fn database_of(tag: &str, schema: &[&str], with_rows: bool) -> TestDb {
    let db = TestDb::empty(tag);
    let mut args = vec!["schema"];
    args.extend_from_slice(schema);
    assert_success(&db.logctl(&args).output().unwrap());
    if with_rows {
        db.client()
            .batch_execute(
                "INSERT INTO services (service_name) VALUES ('seed'); \
                 INSERT INTO log_events (event_id, service_id, created_at, message) \
                 SELECT gen_random_uuid(), service_id, '2026-01-01', 'seed' FROM services",
            )
            .unwrap();
    }
    db
}

fn messages_without_seed(db: &TestDb) -> Vec<String> {
    messages(db).into_iter().filter(|m| m != "seed").collect()
}

#[test]
fn a_service_name_too_long_for_its_unique_index_rejects_only_its_line() {
    for (variant, schema, with_rows) in VARIANTS {
        let db = database_of(&format!("long_service_{variant}"), schema, with_rows);
        // Random letters: a run of one letter compresses to fit the index.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let name: String = (0..4_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        let bad = format!(r#"{{"ts":"2026-11-24T12:00:00Z","service":"{name}","msg":"too long"}}"#);
        let corpus = Corpus::of(&[
            good(1).as_bytes(),
            good(2).as_bytes(),
            bad.as_bytes(),
            good(3).as_bytes(),
        ]);
        let loaded = load(&db, &corpus, &[]);
        assert_exit(&loaded.output, 4);
        assert_eq!(messages_without_seed(&db), goods(1..=3), "{variant}");
        assert_rejects(
            &loaded,
            &corpus,
            &[(3, &["refused by PostgreSQL as a service name", "index row"])],
        );
        // Every run after that loads nothing again and is not blocked by it.
        let again = load(&db, &corpus, &[]);
        assert_exit(&again.output, 0);
        assert_eq!(messages_without_seed(&db), goods(1..=3), "{variant}");
    }
}

#[test]
fn a_duplicate_for_a_unique_index_of_the_users_rejects_only_its_line() {
    for (variant, schema, with_rows) in VARIANTS {
        let db = database_of(&format!("unique_users_{variant}"), schema, with_rows);
        let unique = if schema.is_empty() {
            "CREATE UNIQUE INDEX one_message ON log_events (message)"
        } else {
            "CREATE UNIQUE INDEX one_message ON log_events (message, created_at)"
        };
        db.client().batch_execute(unique).unwrap();
        let corpus = Corpus::of(&[
            good(1).as_bytes(),
            good(2).as_bytes(),
            good(2).as_bytes(),
            good(3).as_bytes(),
        ]);
        let loaded = load(&db, &corpus, &[]);
        assert_exit(&loaded.output, 4);
        assert_eq!(messages_without_seed(&db), goods(1..=3), "{variant}");
        assert_rejects(&loaded, &corpus, &[(3, &["duplicate key"])]);
        // The load that ran again, keeping the indexes, compacted the rollups of its
        // three lines.
        assert_eq!(
            db.count("SELECT count(*) FROM logctl_rollup_deltas"),
            0,
            "{variant}"
        );
        assert_eq!(
            db.count("SELECT coalesce(sum(events), 0)::bigint FROM logctl_rollup_total_minute"),
            3,
            "{variant}"
        );
    }
}

#[test]
fn a_time_no_partition_can_hold_is_rejected_with_a_reason() {
    let db = database_of("before_year_one", &["--partition", "day"], false);
    let bad = r#"{"ts":-62200000000,"service":"api","msg":"before year 1"}"#;
    let corpus = Corpus::of(&[good(1).as_bytes(), bad.as_bytes(), good(2).as_bytes()]);
    let loaded = load(&db, &corpus, &[]);
    assert_exit(&loaded.output, 4);
    assert_eq!(messages(&db), goods(1..=2));
    assert_rejects(&loaded, &corpus, &[(2, &["outside the years 1 to 9999"])]);
    let keep = load(&db, &corpus, &["--index-strategy", "keep"]);
    assert_exit(&keep.output, 0);
}
