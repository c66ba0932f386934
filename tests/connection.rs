//! Where logctl connects (flag, DATABASE_URL, PG* variables, the managed local
//! instance), what it says when it cannot, and the exit codes of those cases.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

const CLOSED_PORT_URL: &str = "postgresql://alice:hunter2secret@127.0.0.1:1/logs";

#[test]
fn an_unreachable_server_exits_3_without_showing_the_password() {
    for args in [vec!["schema"], vec!["slow"], vec!["status"]] {
        let output = logctl_bare(&args)
            .env("DATABASE_URL", CLOSED_PORT_URL)
            .output()
            .unwrap();
        assert_exit(&output, 3);
        let err = stderr(&output);
        assert!(
            err.contains("cannot connect to alice@127.0.0.1:1/logs"),
            "{err}"
        );
        assert!(!err.contains("hunter2secret"), "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_exit(
        &logctl_bare(&["load", "--no-such-flag", "x"])
            .output()
            .unwrap(),
        2,
    );
    assert_exit(&logctl_bare(&["frobnicate"]).output().unwrap(), 2);
    let missing = logctl_bare(&["load", "/nonexistent/file.ndjson"])
        .output()
        .unwrap();
    assert_exit(&missing, 2);
    assert!(
        stderr(&missing).contains("no such file"),
        "{}",
        stderr(&missing)
    );
    let no_match = logctl_bare(&["load", "/nonexistent/*.ndjson"])
        .output()
        .unwrap();
    assert_exit(&no_match, 2);
    assert_exit(
        &logctl_bare(&["load", "x", "--timezone", "Mars/Olympus"])
            .output()
            .unwrap(),
        2,
    );
    assert_exit(
        &logctl_bare(&["slow", "--since", "the dawn of time"])
            .output()
            .unwrap(),
        2,
    );
}

#[test]
fn a_time_that_does_not_parse_is_reported_under_its_own_flag() {
    for (args, flag) in [
        (["prune", "--older-than", "nonsense"], "--older-than"),
        (["slow", "--since", "nonsense"], "--since"),
    ] {
        let output = logctl_bare(&args).output().unwrap();
        assert_exit(&output, 2);
        let err = stderr(&output);
        assert!(err.contains(&format!("{flag} `nonsense`")), "{err}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let output = logctl_bare(&["--help"]).output().unwrap();
    assert_success(&output);
    let help = stdout(&output);
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "] {
        assert!(
            help.contains(&format!("  {code}")),
            "exit code {code} missing from:\n{help}"
        );
    }
    let load_help = stdout(&logctl_bare(&["load", "--help"]).output().unwrap());
    assert!(load_help.contains("130"), "{load_help}");
}

#[test]
fn the_flag_wins_over_database_url_and_pg_variables_work() {
    let db = TestDb::empty("precedence");
    let output = logctl_bare(&["schema", "--database-url", &db.url])
        .env("DATABASE_URL", CLOSED_PORT_URL)
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(db.count("SELECT count(*) FROM logctl_schema_version"), 4);

    let socket_dir = cluster().root().join("run");
    let output = logctl_bare(&["status", "--format", "json"])
        .env("PGHOST", &socket_dir)
        .env("PGUSER", "logctl")
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["sources"], serde_json::json!([]));
}

#[test]
fn with_nothing_configured_the_local_instance_is_started_and_used() {
    let dir = scratch_dir("local-instance");
    let local = dir.join("instance");
    let run = |args: &[&str]| {
        logctl_bare(args)
            .env("LOGCTL_LOCAL_DIR", &local)
            .output()
            .unwrap()
    };
    let status = run(&["local", "status"]);
    assert!(
        stdout(&status).starts_with("not created"),
        "{}",
        stdout(&status)
    );

    let schema = run(&["schema"]);
    assert_success(&schema);
    assert!(
        stderr(&schema).contains("started the local PostgreSQL instance"),
        "{}",
        stderr(&schema)
    );
    let file = generated_file(&dir, "app.ndjson", 500, 4);
    let load = run(&["load", file.to_str().unwrap()]);
    assert_success(&load);
    assert!(
        !stderr(&load).contains("started"),
        "already running: {}",
        stderr(&load)
    );

    let url = stdout(&run(&["local", "url"])).trim().to_string();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM log_events", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 500);
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, "logctl");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let owner = std::fs::metadata(local.join("data")).unwrap().uid();
        assert_ne!(owner, 0, "as root, the server runs as an unprivileged user");
    }
    assert!(stdout(&run(&["local", "status"])).starts_with("running"));
    assert_success(&run(&["local", "stop"]));
    assert!(stdout(&run(&["local", "status"])).starts_with("stopped"));
}

#[test]
fn a_missing_postgresql_installation_says_how_to_install_it() {
    let dir = scratch_dir("not-installed");
    let output = logctl_bare(&["schema"])
        .env("LOGCTL_LOCAL_DIR", dir.join("instance"))
        .env("LOGCTL_PG_BINDIR", dir.join("no-bin"))
        .output()
        .unwrap();
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(err.contains("PostgreSQL is not installed"), "{err}");
    assert!(err.contains("apt-get install postgresql"), "{err}");
}

#[test]
fn gen_is_deterministic() {
    let a = logctl_bare(&["gen", "--lines", "300", "--seed", "9"])
        .output()
        .unwrap();
    let b = logctl_bare(&["gen", "--lines", "300", "--seed", "9"])
        .output()
        .unwrap();
    assert_success(&a);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(stdout(&a).lines().count(), 300);
}
