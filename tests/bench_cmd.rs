//! `logctl bench write-penalty`: it measures every configuration and leaves nothing behind.

mod common;

use common::*;

#[test]
fn write_penalty_measures_each_configuration_in_a_scratch_schema_it_drops() {
    let db = TestDb::with_schema("penalty");
    let tables_before = db.count("SELECT count(*) FROM pg_class");
    let output = db
        .logctl(&[
            "bench",
            "write-penalty",
            "--rows",
            "2000",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = json["write_penalty"].as_array().unwrap();
    for row in rows {
        for number in ["seconds", "spread", "cost_vs_no_index"] {
            assert!(row[number].is_f64(), "{number} is a number: {row}");
        }
        assert!(row["beyond_noise"].is_boolean(), "{row}");
        assert!(row["spread"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(rows[0]["cost_vs_no_index"], 0.0);
    if rows.iter().any(|row| row["beyond_noise"] == false) {
        let err = stderr(&output);
        assert!(
            err.contains("noise") && err.contains("2000 rows is a small sample"),
            "{err}"
        );
    }
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0]["indexes"], 0);
    assert_eq!(rows[5]["indexes"], 5);
    assert!(
        rows.iter()
            .all(|r| r["rows_per_second"].as_i64().unwrap() > 0)
    );
    assert!(
        rows.iter()
            .any(|r| r["configuration"].as_str().unwrap().contains("BRIN"))
    );
    assert!(
        rows.iter()
            .any(|r| r["configuration"].as_str().unwrap().contains("random v4"))
    );
    let default_set = |name: &str| {
        rows.iter()
            .find(|r| r["configuration"] == name)
            .unwrap_or_else(|| panic!("{name}"))["indexes"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(default_set("logctl's default set"), 5);
    assert_eq!(default_set("logctl's default set + request-id index"), 6);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'logctl_write_penalty%'"),
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_class"),
        tables_before,
        "nothing left behind"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM log_events"),
        0,
        "the real table is untouched"
    );
}
