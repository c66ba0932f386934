//! The managed local instance: a private PostgreSQL cluster under the user's data
//! directory, created with the installed initdb and run with pg_ctl. As root, the
//! server runs as the unprivileged `postgres` user (PostgreSQL refuses to run as root).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::settings::{Origin, SslMode, Target};
use crate::Error;

/// The database and role the local instance is created with.
pub const DATABASE: &str = "logctl";
pub const USER: &str = "logctl";

/// Where the local instance lives, and who runs it.
#[derive(Debug, Clone)]
pub struct LocalInstance {
    root: PathBuf,
}

/// Whether a command may create the local instance when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Create,
    /// Read-only commands: a new instance would have nothing to read.
    RequireExisting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotCreated,
    Stopped,
    Running,
}

impl LocalInstance {
    /// The instance for the current user: `$LOGCTL_LOCAL_DIR`, else the user's data
    /// directory; root's home is closed to the server user, so root's lives in /var/lib.
    pub fn for_current_user() -> Result<LocalInstance, Error> {
        let root = match std::env::var_os("LOGCTL_LOCAL_DIR").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None if is_root() => PathBuf::from("/var/lib/logctl/local"),
            None => dirs::data_dir()
                .ok_or_else(|| {
                    Error::LocalInstance(
                        "cannot find your data directory; set LOGCTL_LOCAL_DIR".into(),
                    )
                })?
                .join("logctl/local"),
        };
        Ok(LocalInstance::at(root))
    }

    /// An instance rooted at an explicit directory (the test harness uses a temporary one).
    pub fn at(root: impl Into<PathBuf>) -> LocalInstance {
        LocalInstance { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The connection target of this instance (a Unix socket, trust authentication).
    pub fn target(&self) -> Target {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .user(USER)
            .dbname(DATABASE)
            .application_name("logctl")
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .connect_timeout(std::time::Duration::from_secs(10));
        Target {
            config,
            ssl_mode: SslMode::Disable,
            ssl_root_cert: None,
            origin: Origin::Local,
        }
    }

    /// A URL for psql and other libpq clients.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The URL of another database in this instance (the test harness makes one per test).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgresql://{USER}@{}/{database}",
            percent_encode(&self.socket_dir().to_string_lossy())
        )
    }

    pub fn status(&self) -> Result<Status, Error> {
        if !self.data_dir().join("PG_VERSION").exists() {
            return Ok(Status::NotCreated);
        }
        let output = self.pg_ctl(&["status"])?;
        Ok(if output.status.success() {
            Status::Running
        } else {
            Status::Stopped
        })
    }

    /// Creates the cluster if needed and starts it; returns whether it was started now.
    /// A file lock keeps two logctl processes from initialising or starting it at once.
    pub fn start(&self) -> Result<bool, Error> {
        let bindir = postgres_bindir()?;
        fs::create_dir_all(&self.root).map_err(|e| self.io_error("create", &self.root, e))?;
        let _lock = self.lock()?;
        let owner = server_user()?;
        if let Some(owner) = owner {
            self.check_reachable_by(owner)?;
        }
        if !self.data_dir().join("PG_VERSION").exists() {
            self.initialise(&bindir, owner)?;
        }
        if self.status()? == Status::Running {
            return Ok(false);
        }
        let data = self.data_dir();
        let output = self.run(
            Command::new(bindir.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "120", "start"]),
        )?;
        if !output.status.success() {
            return Err(Error::LocalInstance(format!(
                "the local PostgreSQL instance at {} did not start: {}\n{}",
                self.root.display(),
                String::from_utf8_lossy(&output.stderr).trim(),
                self.log_tail()
            )));
        }
        Ok(true)
    }

    /// Stops the server if it runs (fast shutdown: sessions are cut, nothing committed is lost).
    pub fn stop(&self) -> Result<bool, Error> {
        if self.status()? != Status::Running {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let output = self.pg_ctl(&["-m", "fast", "-w", "stop"])?;
        if !output.status.success() {
            return Err(Error::LocalInstance(format!(
                "could not stop the local instance: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(true)
    }

    /// Stops the server at once and deletes the instance with all its data.
    pub fn destroy(&self) -> Result<(), Error> {
        if self.status()? == Status::Running {
            self.pg_ctl(&["-m", "immediate", "-w", "stop"])?;
        }
        match fs::remove_dir_all(&self.root) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(self.io_error("delete", &self.root, error))
            }
            _ => Ok(()),
        }
    }

    /// As root the server runs as another user, which must be able to enter every
    /// directory above the instance's (a home directory is often 0700).
    fn check_reachable_by(&self, owner: (u32, u32)) -> Result<(), Error> {
        let (uid, gid) = owner;
        let root =
            fs::canonicalize(&self.root).map_err(|e| self.io_error("find", &self.root, e))?;
        for dir in root.ancestors().skip(1) {
            let Ok(metadata) = fs::metadata(dir) else {
                continue;
            };
            let mode = metadata.mode();
            let search_bit = if metadata.uid() == uid {
                0o100
            } else if metadata.gid() == gid {
                0o010
            } else {
                0o001
            };
            if mode & search_bit == 0 {
                return Err(Error::LocalInstance(format!(
                    "the local instance's server cannot reach {}: as root, logctl runs it as \
                     the user with uid {uid} (PostgreSQL refuses to run as root), and that \
                     user cannot enter {} (mode {:o})\n\
                     hint: set LOGCTL_LOCAL_DIR to a directory outside it (unset, root's \
                     instance lives in /var/lib/logctl/local), or let the server's user \
                     through with `chmod o+x {}`",
                    root.display(),
                    dir.display(),
                    mode & 0o7777,
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// Says on stderr that the local instance is used (and whether it was started now),
    /// starts it if needed (creating it only when `creation` allows), and makes sure the
    /// `logctl` database exists. Used when no connection settings were given.
    pub async fn ensure_running_and_announce(&self, creation: Creation) -> crate::Result<Target> {
        eprintln!(
            "logctl: no connection configured (--database-url, DATABASE_URL, PG* variables); \
             using the local instance in {}",
            self.root.display()
        );
        if creation == Creation::RequireExisting && self.status()? == Status::NotCreated {
            return Err(Error::LocalInstance(format!(
                "no local instance exists in {}, so there is nothing to read\n\
                 hint: point logctl at your database (--database-url, DATABASE_URL, PGHOST, \
                 PGSERVICE, ...), or create the local instance and load logs into it: \
                 `logctl local start`, `logctl schema`, `logctl load FILE`",
                self.root.display()
            )));
        }
        let instance = self.clone();
        let started = run_blocking(move || instance.start()).await?;
        if started {
            eprintln!(
                "logctl: started the local PostgreSQL instance in {} (stop it with `logctl local stop`)",
                self.root.display()
            );
        }
        self.ensure_database().await?;
        Ok(self.target())
    }

    /// Creates the `logctl` database on first use; idempotent and safe against a racing creator.
    pub async fn ensure_database(&self) -> crate::Result<()> {
        let mut maintenance = self.target();
        maintenance.config.dbname("postgres");
        let database = super::Database::connect(maintenance, 1).await?;
        let client = database.dedicated().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
            .await?
            .is_some();
        if !exists
            && let Err(error) = client
                .execute(&format!("CREATE DATABASE {DATABASE}"), &[])
                .await
            && error.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
        {
            return Err(error.into());
        }
        Ok(())
    }

    fn initialise(&self, bindir: &Path, owner: Option<(u32, u32)>) -> Result<(), Error> {
        let data = self.data_dir();
        let sockets = self.socket_dir();
        for dir in [&self.root, &sockets] {
            fs::create_dir_all(dir).map_err(|e| self.io_error("create", dir, e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| self.io_error("set permissions on", dir, e))?;
            if let Some((uid, gid)) = owner {
                chown(dir, Some(uid), Some(gid)).map_err(|e| self.io_error("chown", dir, e))?;
            }
        }
        let _ = fs::remove_dir_all(&data);
        let output = self.run(
            Command::new(bindir.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale"]),
        )?;
        if !output.status.success() {
            return Err(Error::LocalInstance(format!(
                "initdb failed for the local instance in {}: {}",
                self.root.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let settings = format!(
            "\n# logctl local instance: reachable only through its own Unix socket\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n",
            sockets.display().to_string().replace('\'', "''")
        );
        let conf = data.join("postgresql.conf");
        let mut contents =
            fs::read_to_string(&conf).map_err(|e| self.io_error("read", &conf, e))?;
        contents.push_str(&settings);
        fs::write(&conf, contents).map_err(|e| self.io_error("write", &conf, e))?;
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, Error> {
        let bindir = postgres_bindir()?;
        self.run(
            Command::new(bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .args(args),
        )
    }

    /// Runs a PostgreSQL program as the server user, from a directory it can read.
    fn run(&self, command: &mut Command) -> Result<Output, Error> {
        if let Some((uid, gid)) = server_user()? {
            command.uid(uid).gid(gid);
        }
        command
            .current_dir(&self.root)
            .env_remove("PGDATA")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        command.output().map_err(|e| {
            Error::LocalInstance(format!("cannot run {:?}: {e}", command.get_program()))
        })
    }

    fn lock(&self) -> Result<File, Error> {
        let path = self.root.join(".logctl.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.io_error("open", &path, e))?;
        file.lock().map_err(|e| self.io_error("lock", &path, e))?;
        Ok(file)
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log_file().display())
    }

    fn io_error(&self, action: &str, path: &Path, error: std::io::Error) -> Error {
        Error::LocalInstance(format!(
            "cannot {action} {} for the local instance: {error}",
            path.display()
        ))
    }
}

/// The directory holding initdb and pg_ctl: PATH first, then `pg_config --bindir`,
/// then the versioned directories distributions install into (newest first).
/// `LOGCTL_PG_BINDIR` overrides the search (and is the only place looked at when set).
pub fn postgres_bindir() -> Result<PathBuf, Error> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("LOGCTL_PG_BINDIR").map(PathBuf::from) {
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(not_installed())
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                return Ok(dir);
            }
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_tools(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = Vec::new();
    for pattern in [
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
    ] {
        for dir in glob::glob(pattern).into_iter().flatten().flatten() {
            if has_tools(&dir) {
                let version = dir
                    .to_string_lossy()
                    .split(|c: char| !c.is_ascii_digit())
                    .find_map(|part| part.parse().ok())
                    .unwrap_or(0);
                candidates.push((version, dir));
            }
        }
    }
    candidates.sort();
    candidates
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(not_installed)
}

fn not_installed() -> Error {
    Error::LocalInstance(
        "PostgreSQL is not installed: no initdb/pg_ctl in PATH, `pg_config --bindir` or \
             /usr/lib/postgresql/*/bin\n\
             hint: install it (Debian/Ubuntu: `sudo apt-get install postgresql`; Fedora: \
             `sudo dnf install postgresql-server`; macOS: `brew install postgresql`), \
             or point logctl at a server with --database-url"
            .into(),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// As root, the uid/gid of the unprivileged user the server runs as.
fn server_user() -> Result<Option<(u32, u32)>, Error> {
    if !is_root() {
        return Ok(None);
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam returns null or a pointer to static storage read at once.
        unsafe {
            let entry = libc::getpwnam(name.as_ptr());
            if !entry.is_null() {
                return Ok(Some(((*entry).pw_uid, (*entry).pw_gid)));
            }
        }
    }
    Err(Error::LocalInstance(
        "running as root, but there is no `postgres` user to run the server as; \
         create one (`useradd --system postgres`) or run logctl as an ordinary user"
            .into(),
    ))
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Runs a blocking step of the instance's life (initdb, pg_ctl) off the async threads.
pub async fn run_blocking<T: Send + 'static>(
    step: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| Error::LocalInstance(format!("the local instance's task failed: {e}")))?
}
