//! Where to connect: `--database-url`, then `DATABASE_URL`, then libpq's `PG*`
//! variables (with `~/.pgpass`), then the managed local instance.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;

use super::pgpass;
use crate::Error;

/// Which of the configuration sources a target came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    DatabaseUrl,
    PgEnvironment,
    Local,
}

/// TLS policy, following libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = Error;
    fn from_str(value: &str) -> Result<Self, Error> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Settings(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// A resolved connection target: tokio-postgres settings plus the TLS policy.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub ssl_root_cert: Option<PathBuf>,
    pub origin: Origin,
}

impl Target {
    /// Parses a libpq-style URL or `key=value` string, taking out the TLS keys
    /// that tokio-postgres does not understand (`verify-ca`, `verify-full`, `sslrootcert`).
    pub fn parse(connection: &str, origin: Origin) -> Result<Target, Error> {
        let (rest, ssl_mode) = take_param(connection, "sslmode");
        let (rest, ssl_root_cert) = take_param(&rest, "sslrootcert");
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::Settings(format!("cannot parse the connection string: {e}")))?;
        let ssl_mode = match ssl_mode {
            Some(mode) => mode.parse()?,
            None => SslMode::Prefer,
        };
        if config.get_hosts().is_empty() {
            config.host_path(default_socket_dir(config.get_ports().first().copied()));
        }
        let mut target = Target {
            config,
            ssl_mode,
            ssl_root_cert: ssl_root_cert.map(PathBuf::from),
            origin,
        };
        target.apply_defaults();
        Ok(target)
    }

    /// Builds a target from libpq's environment variables, if any of them is set.
    pub fn from_pg_environment() -> Result<Option<Target>, Error> {
        const KEYS: [(&str, &str); 7] = [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "dbname"),
            ("PGAPPNAME", "application_name"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
        ];
        let mut any = false;
        let mut config = tokio_postgres::Config::new();
        for (variable, key) in KEYS {
            let Some(value) = std::env::var(variable).ok().filter(|v| !v.is_empty()) else {
                continue;
            };
            any = true;
            match key {
                "host" => {
                    for host in value.split(',') {
                        if host.starts_with('/') {
                            config.host_path(host);
                        } else {
                            config.host(host);
                        }
                    }
                }
                "port" => {
                    let port = value.parse::<u16>().map_err(|_| {
                        Error::Settings(format!("PGPORT `{value}` is not a port number"))
                    })?;
                    config.port(port);
                }
                "user" => {
                    config.user(&value);
                }
                "password" => {
                    config.password(value.as_bytes());
                }
                "dbname" => {
                    config.dbname(&value);
                }
                "application_name" => {
                    config.application_name(&value);
                }
                _ => {
                    let seconds = value.parse::<u64>().map_err(|_| {
                        Error::Settings(format!(
                            "PGCONNECT_TIMEOUT `{value}` is not a number of seconds"
                        ))
                    })?;
                    config.connect_timeout(Duration::from_secs(seconds.max(2)));
                }
            }
        }
        let ssl_mode = std::env::var("PGSSLMODE").ok().filter(|v| !v.is_empty());
        let ssl_root_cert = std::env::var_os("PGSSLROOTCERT").map(PathBuf::from);
        if !any && ssl_mode.is_none() {
            return Ok(None);
        }
        if config.get_hosts().is_empty() {
            config.host_path(default_socket_dir(config.get_ports().first().copied()));
        }
        let mut target = Target {
            config,
            ssl_mode: match ssl_mode {
                Some(mode) => mode.parse()?,
                None => SslMode::Prefer,
            },
            ssl_root_cert,
            origin: Origin::PgEnvironment,
        };
        target.apply_defaults();
        Ok(Some(target))
    }

    /// Fills in what libpq would: the OS user, a database named after the user,
    /// a password from `~/.pgpass`, and a bounded connect timeout for cron runs.
    fn apply_defaults(&mut self) {
        self.config.ssl_mode(match self.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        if self.config.get_user().is_none() {
            self.config.user(os_user_name());
        }
        if self.config.get_dbname().is_none() {
            let user = self.config.get_user().unwrap_or_default().to_string();
            self.config.dbname(&user);
        }
        if self.config.get_connect_timeout().is_none() {
            self.config.connect_timeout(Duration::from_secs(10));
        }
        if self.config.get_application_name().is_none() {
            self.config.application_name("logctl");
        }
        self.config.keepalives_idle(Duration::from_secs(60));
        if self.config.get_password().is_none() {
            let host = self
                .config
                .get_hosts()
                .first()
                .map(pgpass_host_name)
                .unwrap_or_default();
            let port = self.config.get_ports().first().copied().unwrap_or(5432);
            let dbname = self.config.get_dbname().unwrap_or_default();
            let user = self.config.get_user().unwrap_or_default();
            if let Some(password) = pgpass::lookup(&host, port, dbname, user) {
                self.config.password(password.as_bytes());
            }
        }
    }

    /// `user@host:port/dbname`, never with the password.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{}:{}/{}",
            self.config.get_user().unwrap_or_default(),
            host,
            port,
            self.config.get_dbname().unwrap_or_default()
        )
    }
}

/// How the caller asked to connect, before the local instance is considered.
pub fn configured_target(flag: Option<&str>) -> Result<Option<Target>, Error> {
    if let Some(url) = flag {
        return Target::parse(url, Origin::Flag).map(Some);
    }
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()) {
        return Target::parse(&url, Origin::DatabaseUrl).map(Some);
    }
    Target::from_pg_environment()
}

/// Removes `key=value` from a URL query or a libpq key/value string, returning the rest.
fn take_param(connection: &str, key: &str) -> (String, Option<String>) {
    let is_url = connection.starts_with("postgres://") || connection.starts_with("postgresql://");
    if is_url {
        let Some((base, query)) = connection.split_once('?') else {
            return (connection.to_string(), None);
        };
        let mut found = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| match pair.split_once('=') {
                Some((k, v)) if k == key => {
                    found = Some(v.to_string());
                    false
                }
                _ => true,
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, found)
    } else {
        let mut found = None;
        let kept: Vec<&str> = connection
            .split_whitespace()
            .filter(|pair| match pair.split_once('=') {
                Some((k, v)) if k.trim() == key => {
                    found = Some(v.trim_matches('\'').to_string());
                    false
                }
                _ => true,
            })
            .collect();
        (kept.join(" "), found)
    }
}

/// libpq's compiled-in socket directory differs between builds; Debian uses
/// /var/run/postgresql, upstream /tmp. Pick the one that has a socket.
fn default_socket_dir(port: Option<u16>) -> PathBuf {
    let port = port.unwrap_or(5432);
    for dir in ["/var/run/postgresql", "/tmp"] {
        if std::path::Path::new(dir)
            .join(format!(".s.PGSQL.{port}"))
            .exists()
        {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from("/var/run/postgresql")
}

/// `.pgpass` matches socket connections under the name `localhost`, as libpq does.
fn pgpass_host_name(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(_) => "localhost".to_string(),
    }
}

pub fn os_user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            // SAFETY: getpwuid returns a pointer into static storage or null; we copy out at once.
            unsafe {
                let entry = libc::getpwuid(libc::geteuid());
                if entry.is_null() {
                    None
                } else {
                    Some(
                        std::ffi::CStr::from_ptr((*entry).pw_name)
                            .to_string_lossy()
                            .into_owned(),
                    )
                }
            }
        })
        .unwrap_or_else(|| "postgres".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_sslmode_out_of_urls_and_keyword_strings() {
        let (rest, mode) = take_param(
            "postgresql://u@h/db?sslmode=verify-full&application_name=x",
            "sslmode",
        );
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        let (rest, mode) = take_param("host=h sslmode=require user=u", "sslmode");
        assert_eq!(rest, "host=h user=u");
        assert_eq!(mode.as_deref(), Some("require"));
        let (rest, mode) = take_param("postgresql://u@h/db", "sslmode");
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(mode, None);
    }

    #[test]
    fn describe_never_shows_the_password() {
        let target = Target::parse(
            "postgresql://alice:s3cret@db.example:6543/logs",
            Origin::Flag,
        )
        .unwrap();
        let shown = target.describe();
        assert_eq!(shown, "alice@db.example:6543/logs");
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
