//! Where logctl connects (flag, DATABASE_URL, PG* variables, connection services, the
//! managed local instance), what it says when it cannot, and the exit codes of those cases.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    assert_exit(&no_match, 6);
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
fn a_load_option_that_cannot_be_used_is_reported_under_its_own_flag() {
    let dir = scratch_dir("flag-errors");
    let file = dir.join("app.ndjson");
    std::fs::write(&file, "{}\n").unwrap();
    let file = file.to_str().unwrap();
    for (args, flag) in [
        (["--timezone", "Mars/Olympus"], "--timezone: "),
        (["--shape", "syslog"], "--shape: "),
        (["--include", "[z-a"], "--include `[z-a`"),
    ] {
        let output = logctl_bare(&["load", file, "--dry-run", args[0], args[1]])
            .output()
            .unwrap();
        assert_exit(&output, 2);
        assert!(stderr(&output).contains(flag), "{}", stderr(&output));
    }
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
fn the_flag_wins_over_database_url_and_pg_variables_work() {
    let db = TestDb::empty("precedence");
    let output = logctl_bare(&["schema", "--database-url", &db.url])
        .env("DATABASE_URL", CLOSED_PORT_URL)
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(
        db.count("SELECT count(*) FROM logctl_schema_version"),
        logctl::db::migrate::MIGRATIONS.len() as i64
    );

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
    assert_exit(&status, 3);
    assert!(
        stdout(&status).starts_with("not created"),
        "{}",
        stdout(&status)
    );
    // A report has nothing to read in an instance that does not exist: none is made.
    for report in [
        vec!["slow"],
        vec!["status"],
        vec!["prune", "--older-than", "30d"],
    ] {
        let output = run(&report);
        assert_exit(&output, 1);
        let err = stderr(&output);
        assert!(
            err.contains("no local instance exists") && err.contains("logctl local start"),
            "{err}"
        );
        assert!(
            !local.join("data").exists(),
            "{report:?} created an instance"
        );
    }

    let announcement = format!(
        "no connection configured (--database-url, DATABASE_URL, PG* variables); using the local instance in {}",
        local.display()
    );
    let schema = run(&["schema"]);
    assert_success(&schema);
    assert!(
        stderr(&schema).contains("started the local PostgreSQL instance"),
        "{}",
        stderr(&schema)
    );
    assert!(
        stderr(&schema).contains(&announcement),
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
    assert!(
        stderr(&load).contains(&announcement),
        "announced every time: {}",
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
    let slow = run(&["slow"]);
    assert_success(&slow);
    assert!(
        stdout(&slow).starts_with("database: the local instance (logctl@"),
        "{}",
        stdout(&slow)
    );
    let status = run(&["local", "status"]);
    assert_success(&status);
    assert!(stdout(&status).starts_with("running"));
    assert_success(&run(&["local", "stop"]));
    let status = run(&["local", "status"]);
    assert_exit(&status, 3);
    assert!(stdout(&status).starts_with("stopped"));

    let unasked = run(&["local", "destroy"]);
    assert_exit(&unasked, 2);
    assert!(stderr(&unasked).contains("--yes"), "{}", stderr(&unasked));
    assert!(local.join("data").exists());
    assert_success(&run(&["local", "destroy", "--yes"]));
    assert!(!local.exists());
    assert_exit(&run(&["local", "status"]), 3);
}

#[test]
fn as_root_an_instance_its_server_user_cannot_reach_says_which_directory_and_the_fix() {
    if !is_root() {
        eprintln!("skipped: only root's server runs as another user");
        return;
    }
    let dir = scratch_dir("closed-parent");
    let closed = dir.join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let output = logctl_bare(&["local", "start"])
        .env("LOGCTL_LOCAL_DIR", closed.join("instance"))
        .output()
        .unwrap();
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("cannot enter {} (mode 700)", closed.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod o+x {}", closed.display()))
            && err.contains("LOGCTL_LOCAL_DIR"),
        "{err}"
    );
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

/// The test cluster's socket directory.
fn socket_dir() -> PathBuf {
    cluster().root().join("run")
}

/// logctl with no connection settings, a home of its own (no ~/.pgpass or
/// ~/.pg_service.conf) and no local instance to fall back on: a run that ignores the
/// settings it is given fails instead of starting a cluster.
fn logctl_alone(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut command = logctl_bare(args);
    command
        .env("HOME", dir)
        .env("LOGCTL_LOCAL_DIR", dir.join("no-local-instance"))
        .env("LOGCTL_PG_BINDIR", dir.join("no-postgresql"));
    for variable in [
        "PGHOSTADDR",
        "PGSERVICEFILE",
        "PGSYSCONFDIR",
        "PGPASSFILE",
        "PGOPTIONS",
        "PGTARGETSESSIONATTRS",
        "PGLOADBALANCEHOSTS",
        "PGCHANNELBINDING",
        "PGSSLNEGOTIATION",
        "PGGSSENCMODE",
    ] {
        command.env_remove(variable);
    }
    command
}

fn schema_versions(db: &TestDb) -> i64 {
    db.count("SELECT count(*) FROM logctl_schema_version")
}

#[test]
fn a_service_is_used_through_pgservice_and_through_service_in_the_url() {
    let dir = scratch_dir("service");
    let db = TestDb::empty("service");
    let other = TestDb::empty("service_other");
    let services = dir.join("services.conf");
    std::fs::write(
        &services,
        format!(
            "# the test cluster\n[logs]\nhost={}\nuser=logctl\ndbname={}\n",
            socket_dir().display(),
            db.name
        ),
    )
    .unwrap();

    let schema = logctl_alone(&dir, &["schema"])
        .env("PGSERVICEFILE", &services)
        .env("PGSERVICE", "logs")
        .output()
        .unwrap();
    assert_success(&schema);
    assert!(
        !stderr(&schema).contains("local instance"),
        "{}",
        stderr(&schema)
    );
    assert!(schema_versions(&db) > 0);

    let file = generated_file(&dir, "app.ndjson", 300, 7);
    let load = logctl_alone(
        &dir,
        &[
            "load",
            "--database-url",
            "service=logs",
            file.to_str().unwrap(),
        ],
    )
    .env("PGSERVICEFILE", &services)
    .output()
    .unwrap();
    assert_success(&load);
    assert_eq!(db.count("SELECT count(*) FROM log_events"), 300);

    // Each report's text names the database it read, as the service resolved it.
    let read_from = format!(
        "database: logctl@{}:5432/{}",
        socket_dir().display(),
        db.name
    );
    for report in [vec!["slow"], vec!["status"]] {
        let output = logctl_alone(&dir, &report)
            .env("PGSERVICEFILE", &services)
            .env("PGSERVICE", "logs")
            .output()
            .unwrap();
        assert_success(&output);
        assert!(
            stdout(&output).starts_with(&read_from),
            "{}",
            stdout(&output)
        );
    }

    let explicit_wins = logctl_alone(
        &dir,
        &[
            "schema",
            "--database-url",
            &format!("postgresql:///{}?service=logs", other.name),
        ],
    )
    .env("PGSERVICEFILE", &services)
    .output()
    .unwrap();
    assert_success(&explicit_wins);
    assert!(schema_versions(&other) > 0);
}

#[test]
fn the_users_service_file_comes_before_the_systems() {
    let dir = scratch_dir("service-search");
    let db = TestDb::empty("service_search");
    let section = |name: &str, dbname: &str| {
        format!(
            "[{name}]\nhost={}\nuser=logctl\ndbname={dbname}\n",
            socket_dir().display()
        )
    };
    std::fs::write(dir.join(".pg_service.conf"), section("mine", &db.name)).unwrap();
    let system = dir.join("etc");
    std::fs::create_dir(&system).unwrap();
    std::fs::write(
        system.join("pg_service.conf"),
        section("mine", "not_this_one") + &section("shared", &db.name),
    )
    .unwrap();
    for service in ["mine", "shared"] {
        let output = logctl_alone(&dir, &["status", "--format", "json"])
            .env("PGSYSCONFDIR", &system)
            .env("PGSERVICE", service)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert!(
            err.contains("no logctl schema"),
            "service {service} reached the empty test database: {err}"
        );
    }
}

#[test]
fn an_unknown_service_or_an_unreadable_service_file_exits_2_naming_it() {
    let dir = scratch_dir("service-errors");
    let services = dir.join("services.conf");
    std::fs::write(&services, "[logs]\nhost=/nowhere\n").unwrap();
    let by_variable = logctl_alone(&dir, &["status"])
        .env("PGSERVICEFILE", &services)
        .env("PGSERVICE", "nosuch")
        .output()
        .unwrap();
    assert_exit(&by_variable, 2);
    let err = stderr(&by_variable);
    assert!(
        err.contains("service `nosuch` (from PGSERVICE)")
            && err.contains(&services.display().to_string()),
        "{err}"
    );

    let in_url = logctl_alone(&dir, &["schema", "--database-url", "service=nosuch"])
        .env("PGSERVICEFILE", &services)
        .output()
        .unwrap();
    assert_exit(&in_url, 2);
    assert!(stderr(&in_url).contains("`nosuch`"), "{}", stderr(&in_url));

    let unreadable = logctl_alone(&dir, &["status"])
        .env("PGSERVICEFILE", &dir)
        .env("PGSERVICE", "logs")
        .output()
        .unwrap();
    assert_exit(&unreadable, 2);
    let err = stderr(&unreadable);
    assert!(
        err.contains(&format!(
            "cannot read the connection service file {}",
            dir.display()
        )),
        "{err}"
    );
}

/// Forwards TCP connections on 127.0.0.1 to the test cluster's socket (the cluster
/// listens on no TCP port); returns the port.
fn tcp_proxy() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = socket_dir().join(".s.PGSQL.5432");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(client), Ok(server)) = (client, UnixStream::connect(&socket)) else {
                continue;
            };
            let (mut client_in, mut client_out) = (client.try_clone().unwrap(), client);
            let (mut server_in, mut server_out) = (server.try_clone().unwrap(), server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_in, &mut client_out);
                let _ = client_out.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn hostaddr_connects_over_tcp_without_looking_the_host_up() {
    let dir = scratch_dir("hostaddr");
    let db = TestDb::with_schema("hostaddr");
    let port = tcp_proxy().to_string();
    let from_variables = logctl_alone(&dir, &["status", "--format", "json"])
        .env("PGHOSTADDR", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGUSER", "logctl")
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert_success(&from_variables);

    let unresolvable_name = format!(
        "host=db.invalid hostaddr=127.0.0.1 port={port} user=logctl dbname={}",
        db.name
    );
    let from_flag = logctl_alone(&dir, &["status", "--database-url", &unresolvable_name])
        .output()
        .unwrap();
    assert_success(&from_flag);
}

#[test]
fn several_hosts_are_tried_in_order() {
    let dir = scratch_dir("hosts");
    let db = TestDb::with_schema("hosts");
    let output = logctl_alone(&dir, &["status", "--format", "json"])
        .env("PGHOST", format!("127.0.0.1,{}", socket_dir().display()))
        .env("PGPORT", "1,5432")
        .env("PGUSER", "logctl")
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert_success(&output);
}

#[test]
fn quoted_values_keep_their_spaces_tabs_and_keywords() {
    let dir = scratch_dir("quoting");
    let name = "q  a\tb sslmode=x it's";
    let mut admin = postgres::Client::connect(&cluster().url_for("postgres"), postgres::NoTls)
        .expect("connect to the test cluster");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap();
    let connection = format!(
        r"host={} user=logctl dbname='q  a{}b sslmode=x it\'s' application_name = 'a  b sslmode=y'",
        socket_dir().display(),
        '\t'
    );
    let output = logctl_alone(&dir, &["schema", "--database-url", &connection])
        .output()
        .unwrap();
    assert_success(&output);
    let mut client = postgres::Config::new()
        .host_path(socket_dir())
        .user("logctl")
        .dbname(name)
        .connect(postgres::NoTls)
        .unwrap();
    let versions: i64 = client
        .query_one("SELECT count(*) FROM logctl_schema_version", &[])
        .unwrap()
        .get(0);
    assert!(versions > 0);
}

#[test]
fn malformed_settings_exit_2_and_say_what_is_wrong() {
    let dir = scratch_dir("malformed");
    let cases = [
        ("postgresql://alice:s3cret@[::1/logs", "no matching `]`"),
        (
            "postgresql://alice:s3cret@db.example:port/logs",
            "port entry `port`",
        ),
        (
            "postgresql://alice:s3cret@db.example/logs?sslmode=bogus",
            "sslmode `bogus`",
        ),
        (
            "postgresql://alice:s3cret@db.example/logs?colour=blue",
            "`colour`",
        ),
        (
            "host=db.example password=s3cret dbname='logs",
            "`dbname` has no closing '",
        ),
        (
            "mysql://alice:s3cret@db.example/logs",
            "`mysql://` is not a PostgreSQL URL",
        ),
    ];
    for (url, reason) in cases {
        for output in [
            logctl_alone(&dir, &["status", "--database-url", url])
                .output()
                .unwrap(),
            logctl_alone(&dir, &["schema"])
                .env("DATABASE_URL", url)
                .output()
                .unwrap(),
        ] {
            assert_exit(&output, 2);
            let err = stderr(&output);
            assert!(err.contains(reason), "{url}: {err}");
            assert!(err.contains("hint: "), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }
    let bad_port = logctl_alone(&dir, &["status"])
        .env("PGHOST", "db.example")
        .env("PGPORT", "543x")
        .output()
        .unwrap();
    assert_exit(&bad_port, 2);
    assert!(
        stderr(&bad_port).contains("PGPORT"),
        "{}",
        stderr(&bad_port)
    );
}

/// A TCP server on 127.0.0.1 that reads each client's first message and answers
/// `reply` (or nothing), then holds the connection for 15 s and closes it, so that a
/// client that would wait for ever still ends; returns its port.
fn fake_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 8];
                if stream.read_exact(&mut request).is_ok() {
                    let _ = stream.write_all(reply);
                }
                std::thread::sleep(Duration::from_secs(15));
            });
        }
    });
    port
}

#[test]
fn connection_failures_say_what_failed() {
    let dir = scratch_dir("failures");
    let failure = |url: &str| {
        let output = logctl_alone(&dir, &["status", "--database-url", url])
            .output()
            .unwrap();
        assert_exit(&output, 3);
        stderr(&output)
    };

    let missing = failure(&cluster().url_for("no_such_database"));
    assert!(
        missing.contains("database \"no_such_database\" does not exist")
            && missing.contains("hint: that database does not exist: create it"),
        "{missing}"
    );
    assert!(
        !missing.contains("check that the server is running"),
        "{missing}"
    );

    let refused = failure(CLOSED_PORT_URL);
    assert!(
        refused.contains("hint: no server is listening there"),
        "{refused}"
    );
    let no_socket = failure("host=/nonexistent/socket/dir user=logctl");
    assert!(
        no_socket.contains("hint: no server is listening there"),
        "{no_socket}"
    );

    let no_tls = fake_server(b"N");
    let tls = failure(&format!(
        "postgresql://u@127.0.0.1:{no_tls}/db?sslmode=require"
    ));
    assert!(
        tls.contains("server does not support TLS")
            && tls.contains("hint: the TLS handshake failed: check sslmode"),
        "{tls}"
    );

    let silent = fake_server(b"");
    let started = Instant::now();
    let timeout = failure(&format!(
        "postgresql://u@127.0.0.1:{silent}/db?connect_timeout=2"
    ));
    assert!(
        timeout.contains("hint: the server did not answer in time")
            && timeout.contains("connect_timeout"),
        "{timeout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_wrong_password_gets_the_password_hint_and_the_password_file_the_right_one() {
    let dir = scratch_dir("password");
    let db = TestDb::with_schema("password");
    let mut admin = postgres::Client::connect(&cluster().url_for("postgres"), postgres::NoTls)
        .expect("connect to the test cluster");
    admin
        .batch_execute("CREATE ROLE logctl_pw LOGIN SUPERUSER PASSWORD 'right-s3cret'")
        .unwrap();
    // The cluster trusts its socket; this role alone must give a password.
    let hba = cluster().root().join("data/pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("local all logctl_pw scram-sha-256\n{rules}")).unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while postgres::Config::new()
        .host_path(socket_dir())
        .user("logctl_pw")
        .dbname(&db.name)
        .connect(postgres::NoTls)
        .is_ok()
    {
        assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }

    let connection = |password: &str| {
        format!(
            "host={} user=logctl_pw dbname={}{password}",
            socket_dir().display(),
            db.name
        )
    };
    let wrong = logctl_alone(
        &dir,
        &[
            "status",
            "--database-url",
            &connection(" password=wrong-s3cret"),
        ],
    )
    .output()
    .unwrap();
    assert_exit(&wrong, 3);
    let err = stderr(&wrong);
    assert!(
        err.contains("password authentication failed")
            && err.contains("hint: the server refused this user or password")
            && err.contains(".pgpass"),
        "{err}"
    );
    assert!(!err.contains("wrong-s3cret"), "{err}");

    let none = logctl_alone(&dir, &["status", "--database-url", &connection("")])
        .output()
        .unwrap();
    assert_exit(&none, 3);
    assert!(
        stderr(&none).contains("hint: the server refused this user or password"),
        "{}",
        stderr(&none)
    );

    // libpq matches a socket directory other than the default by its path.
    let passfile = dir.join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "{}:5432:{}:logctl_pw:right-s3cret\n",
            socket_dir().display(),
            db.name
        ),
    )
    .unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from_file = logctl_alone(&dir, &["status", "--database-url", &connection("")])
        .env("PGPASSFILE", &passfile)
        .output()
        .unwrap();
    assert_success(&from_file);
    assert!(!stdout(&from_file).contains("right-s3cret"));
    assert!(!stderr(&from_file).contains("right-s3cret"));
}
