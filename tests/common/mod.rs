//! The integration-test harness: one throwaway PostgreSQL cluster per test binary,
//! started with the same code as `logctl local` (initdb into a temporary directory,
//! its own Unix socket; as root the server runs as `postgres`), a fresh database per
//! test, a pgbouncer in transaction pooling mode in front of it when a test asks, and
//! helpers to run the built binary against them and read the rows back.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use logctl::db::local::LocalInstance;

static CLUSTER: OnceLock<LocalInstance> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);
static PGBOUNCER: OnceLock<Pgbouncer> = OnceLock::new();

extern "C" fn destroy_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        let _ = cluster.destroy();
    }
    let _ = std::fs::remove_dir_all(process_dir());
}

/// Everything this test process creates lives here, and is removed at exit.
fn process_dir() -> PathBuf {
    std::env::temp_dir().join(format!("logctl-test-{}", std::process::id()))
}

/// The cluster of this test binary, started on first use and destroyed at exit.
pub fn cluster() -> &'static LocalInstance {
    CLUSTER.get_or_init(|| {
        let cluster = LocalInstance::at(scratch_dir("pg"));
        cluster
            .start()
            .expect("the test cluster starts (is PostgreSQL installed?)");
        // SAFETY: registering a plain function to run at process exit.
        unsafe {
            libc::atexit(destroy_cluster);
        }
        cluster
    })
}

/// A fresh directory under this process's temp dir that the server user can enter.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = process_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    for path in [process_dir(), dir.clone()] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod scratch dir");
    }
    dir
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// An empty database (no logctl schema).
    pub fn empty(tag: &str) -> TestDb {
        let cluster = cluster();
        let name = format!("t_{}_{}", tag, NEXT_DATABASE.fetch_add(1, Ordering::SeqCst));
        let mut admin = postgres::Client::connect(&cluster.url_for("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb {
            url: cluster.url_for(&name),
            name,
        }
    }

    /// A database with the logctl schema applied by `logctl schema`.
    pub fn with_schema(tag: &str) -> TestDb {
        let db = TestDb::empty(tag);
        let output = db.logctl(&["schema"]).output().unwrap();
        assert_success(&output);
        db
    }

    /// The logctl binary, pointed at this database and at nothing else.
    pub fn logctl(&self, args: &[&str]) -> Command {
        let mut command = logctl_bare(args);
        command.env("DATABASE_URL", &self.url);
        command
    }

    /// The logctl binary as a user that file permissions apply to: as root, the test
    /// cluster's server user (the one that may use its socket), else this user.
    pub fn logctl_unprivileged(&self, args: &[&str]) -> Command {
        if !is_root() {
            return self.logctl(args);
        }
        let server_user = std::fs::metadata(cluster().root()).expect("the cluster's directory");
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={}", server_user.uid()))
            .arg(format!("--regid={}", server_user.gid()))
            .arg("--clear-groups")
            .arg(env!("CARGO_BIN_EXE_logctl"))
            .args(args);
        without_connection_settings(&mut command);
        command.env("DATABASE_URL", &self.url);
        command
    }

    /// Runs logctl with these arguments, asserts that it succeeds, and returns the JSON
    /// object it printed.
    pub fn logctl_json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.logctl(args).output().unwrap();
        assert_success(&output);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The URL of this database for another role of the cluster.
    pub fn url_as(&self, user: &str) -> String {
        self.url
            .replacen("postgresql://logctl@", &format!("postgresql://{user}@"), 1)
    }

    /// The URL of this database through the harness's pgbouncer (transaction pooling).
    pub fn url_through_pgbouncer(&self) -> String {
        format!(
            "postgresql://logctl@127.0.0.1:{}/{}?sslmode=disable",
            pgbouncer().port,
            self.name
        )
    }

    /// Sets a server setting for every new session of this database.
    pub fn alter_database_set(&self, setting: &str, value: &str) {
        let mut admin = postgres::Client::connect(&cluster().url_for("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} SET {setting} = '{value}'",
                self.name
            ))
            .unwrap();
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }

    /// Holds the rollup lock exclusively, as a rebuild would ("logcroll", `locks::ROLLUPS`),
    /// until the returned connection rolls back or closes: compactions (the end of a load
    /// among them) leave their deltas pending meanwhile.
    pub fn hold_rollup_lock(&self) -> postgres::Client {
        let mut holder = self.client();
        holder
            .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(x'6c6f6763726f6c6c'::bigint)")
            .expect("take the rollup lock");
        holder
    }

    pub fn query(&self, sql: &str) -> Vec<postgres::Row> {
        self.client()
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }
}

/// Whether the tests run as root, whom file permissions do not stop.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The logctl binary with no connection settings from the environment.
pub fn logctl_bare(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logctl"));
    command.args(args);
    without_connection_settings(&mut command);
    command
}

/// No stdin, and none of the environment's connection settings (nor its colour and
/// width choices, which tests set themselves).
fn without_connection_settings(command: &mut Command) {
    command.stdin(Stdio::null());
    for variable in [
        "DATABASE_URL",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
        "PGSERVICE",
        "PGAPPNAME",
        "PGCONNECT_TIMEOUT",
        "PGSSLROOTCERT",
        "LOGCTL_LOCAL_DIR",
        "LOGCTL_PG_BINDIR",
        "NO_COLOR",
        "COLUMNS",
    ] {
        command.env_remove(variable);
    }
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Makes a FIFO (a named pipe) at `path`.
pub fn make_fifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) reads a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Writes generated logs (`logctl gen`) to a file and returns its path.
pub fn generated_file(dir: &Path, name: &str, lines: u64, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let output = logctl_bare(&[
        "gen",
        "--lines",
        &lines.to_string(),
        "--seed",
        &seed.to_string(),
        "--output",
        path.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_success(&output);
    path
}

/// One event as the tests expect it, computed from the input line independently of logctl.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    pub created_at_micros: i64,
    pub service: String,
    pub level: Option<String>,
    pub message: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status: Option<i32>,
    pub latency_ms: Option<i32>,
    pub request_id: Option<String>,
}

/// The expected event of a line in logctl's generic shape (what `logctl gen` writes).
pub fn expected_event(line: &str) -> Event {
    let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    let field = |name: &str| {
        value
            .get(name)
            .or_else(|| value.get("metadata").and_then(|m| m.get(name)))
    };
    let text = |name: &str| field(name).and_then(|v| v.as_str()).map(str::to_string);
    let ts = ["ts", "timestamp", "time", "@timestamp"]
        .iter()
        .find_map(|key| value.get(*key).and_then(|v| v.as_str()))
        .expect("a timestamp");
    Event {
        created_at_micros: chrono::DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .timestamp_micros(),
        service: value
            .get("service")
            .and_then(|v| v.as_str())
            .unwrap()
            .to_string(),
        level: value
            .get("level")
            .and_then(|v| v.as_str())
            .map(str::to_lowercase),
        message: value
            .get("message")
            .or_else(|| value.get("msg"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        endpoint: text("endpoint"),
        method: text("method"),
        status: field("status").and_then(|v| v.as_i64()).map(|v| v as i32),
        latency_ms: field("latency_ms")
            .and_then(|v| v.as_i64())
            .map(|v| v as i32),
        request_id: text("request_id"),
    }
}

/// Every event in the database, in a comparable order.
pub fn loaded_events(db: &TestDb) -> Vec<Event> {
    let mut events: Vec<Event> = db
        .query(
            "SELECT (extract(epoch FROM l.created_at) * 1000000)::bigint, s.service_name, l.level, l.message, \
             l.endpoint, l.method, l.status::int, l.latency_ms, l.request_id::text \
             FROM log_events l JOIN services s ON s.service_id = l.service_id",
        )
        .iter()
        .map(|row| Event {
            created_at_micros: row.get(0),
            service: row.get(1),
            level: row.get(2),
            message: row.get(3),
            endpoint: row.get(4),
            method: row.get(5),
            status: row.get(6),
            latency_ms: row.get(7),
            request_id: row.get(8),
        })
        .collect();
    events.sort();
    events
}

/// The expected events of every non-blank line of a file.
pub fn expected_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut events: Vec<Event> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(expected_event)
        .collect();
    events.sort();
    events
}

/// Asserts that the rollups (compacted and pending) match the raw rows, day by day:
/// `logctl rollup verify` over all time exits 0.
pub fn assert_rollups_match(db: &TestDb) {
    let output = db
        .logctl(&[
            "rollup",
            "verify",
            "--since",
            "1970-01-01T00:00:00Z",
            "--until",
            "2100-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_success(&output);
}

/// Asserts that log_events holds the valid lines of these files, each exactly once, and
/// that the rollups count exactly those rows.
pub fn assert_loaded_exactly(db: &TestDb, files: &[&Path]) {
    assert_rollups_match(db);
    let mut expected: Vec<Event> = files.iter().flat_map(|f| expected_events(f)).collect();
    expected.sort();
    assert_eq!(
        db.count("SELECT count(*) FROM log_events"),
        expected.len() as i64,
        "row count; the ledger (bytes, lines: rows + rejected): {}",
        db.query(
            "SELECT coalesce(string_agg(format('%s-%s, %s-%s: %s + %s', start_offset, \
             end_offset, start_line, end_line, loaded_rows, rejected_lines), '; ' \
             ORDER BY source_key, start_offset), '') FROM logctl_ranges"
        )[0]
        .get::<_, String>(0)
    );
    assert_eq!(
        db.count("SELECT count(DISTINCT event_id) FROM log_events"),
        expected.len() as i64
    );
    assert_eq!(
        loaded_events(db),
        expected,
        "rows equal the input, line for line"
    );
}

/// Waits until a load started on `db` is copying, inside its transaction, into a table
/// whose name starts with `table_prefix`, then a little longer, so that it is mid-load.
pub fn wait_until_copying(db: &TestDb, child: &mut Child, table_prefix: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.count(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND xact_start IS NOT NULL AND query LIKE 'COPY {table_prefix}%'"
    )) == 0
    {
        assert!(child.try_wait().unwrap().is_none(), "the load ended first");
        assert!(
            std::time::Instant::now() < deadline,
            "the load never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
}

/// Starts `logctl ARGS...` on `db`, its output captured.
pub fn spawn_logctl(db: &TestDb, args: &[&str]) -> Child {
    db.logctl(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `logctl load ARGS...` on `db`, its output captured.
pub fn spawn_load(db: &TestDb, args: &[&str]) -> Child {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    spawn_logctl(db, &all)
}

/// Starts the loads all at once, then asserts that each one succeeds.
pub fn load_at_once(db: &TestDb, runs: &[Vec<&str>]) {
    let children: Vec<Child> = runs.iter().map(|args| spawn_load(db, args)).collect();
    for child in children {
        assert_success(&child.wait_with_output().unwrap());
    }
}

/// Runs a command to its end, failing the test if it takes more than `seconds`.
pub fn run_within(command: &mut Command, seconds: u64) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_within(child, seconds)
}

/// Waits for a process's end and output, killing it and failing the test after `seconds`.
pub fn wait_within(mut child: Child, seconds: u64) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("a process was still running after {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A pgbouncer (Debian's package) in transaction pooling mode in front of this binary's
/// cluster, listening on a free port of 127.0.0.1 for the cluster's `logctl` user with
/// trust authentication; started on first use (as the server's user when root, since
/// pgbouncer refuses to run as root) and killed at exit. Panics when pgbouncer is not
/// installed: the tests that need it must not pass without it.
pub struct Pgbouncer {
    pub port: u16,
    child: std::sync::Mutex<Child>,
}

extern "C" fn stop_pgbouncer() {
    if let Some(pgbouncer) = PGBOUNCER.get()
        && let Ok(mut child) = pgbouncer.child.lock()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn pgbouncer() -> &'static Pgbouncer {
    PGBOUNCER.get_or_init(|| {
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .expect(
                "pgbouncer is not installed: scripts/test.sh installs Debian's pgbouncer package",
            );
        let socket_dir = match &cluster().target().config.get_hosts()[0] {
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            other => panic!("the test cluster listens on a socket, not {other:?}"),
        };
        let dir = scratch_dir("pgbouncer");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        std::fs::write(dir.join("userlist.txt"), "\"logctl\" \"\"\n").unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n\
                 * = host={socket_dir} port=5432\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\n\
                 default_pool_size = 20\n\
                 max_client_conn = 500\n\
                 logfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let mut command = Command::new(program);
        command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = unprivileged_user() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        let child = command.spawn().expect("start pgbouncer");
        let pgbouncer = Pgbouncer {
            port,
            child: std::sync::Mutex::new(child),
        };
        // SAFETY: registering a plain function to run at process exit.
        unsafe {
            libc::atexit(stop_pgbouncer);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not start listening:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        pgbouncer
    })
}

/// As root, the uid and gid of the `postgres` user that the cluster runs as.
fn unprivileged_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam returns null or a pointer to
    // static storage read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let entry = libc::getpwnam(c"postgres".as_ptr());
        assert!(!entry.is_null(), "running as root without a postgres user");
        Some(((*entry).pw_uid, (*entry).pw_gid))
    }
}
