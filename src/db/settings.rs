//! Where to connect, read as libpq reads it: `--database-url`, else `DATABASE_URL` (a URL
//! or key=value string); the `pg_service.conf` section named by `service=` or `PGSERVICE`,
//! then libpq's `PG*` variables, fill in what it leaves unset, and the password file a
//! missing password. With none of these set the caller uses the managed local instance.

mod conninfo;
mod service_file;

pub use conninfo::SyntaxError;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{
    ChannelBinding, Host, LoadBalanceHosts, SslNegotiation, TargetSessionAttrs,
};

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

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--database-url",
            Origin::DatabaseUrl => "DATABASE_URL",
            Origin::PgEnvironment => "the PG* variables",
            Origin::Local => "the local instance",
        })
    }
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

/// A resolved connection target: tokio-postgres settings plus the TLS policy.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub ssl_root_cert: Option<PathBuf>,
    pub origin: Origin,
}

impl Target {
    /// `user@host:port/dbname` (every host of a list, with its `hostaddr`), never the
    /// password; the local instance says that it is one.
    pub fn describe(&self) -> String {
        let hosts = self.config.get_hosts();
        let addresses = self.config.get_hostaddrs();
        let ports = self.config.get_ports();
        let servers: Vec<String> = (0..hosts.len().max(addresses.len()))
            .map(|index| {
                let address = addresses.get(index).map(|address| match address {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                });
                let server = match (hosts.get(index), address) {
                    (Some(Host::Tcp(name)), Some(address)) if !name.is_empty() => {
                        format!("{name} ({address})")
                    }
                    (_, Some(address)) => address,
                    (Some(Host::Tcp(name)), None) => name.clone(),
                    (Some(Host::Unix(path)), None) => path.display().to_string(),
                    (None, None) => unreachable!("index below the longer list"),
                };
                let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
                format!("{server}:{port}")
            })
            .collect();
        let described = format!(
            "{}@{}/{}",
            self.config.get_user().unwrap_or_default(),
            servers.join(","),
            self.config.get_dbname().unwrap_or_default()
        );
        match self.origin {
            Origin::Local => format!("the local instance ({described})"),
            _ => described,
        }
    }
}

/// How the caller asked to connect, or `None` when nothing is configured and the
/// local instance should be used.
pub fn configured_target(flag: Option<&str>) -> Result<Option<Target>, Error> {
    resolve(flag, &|name| {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    })
}

/// Looks up an environment variable, giving `None` for one that is unset or empty.
type Variables<'a> = &'a dyn Fn(&str) -> Option<String>;

fn resolve(flag: Option<&str>, variables: Variables) -> Result<Option<Target>, Error> {
    let explicit = match flag {
        Some(text) => Some((text.to_string(), Origin::Flag)),
        None => variables("DATABASE_URL").map(|text| (text, Origin::DatabaseUrl)),
    };
    let mut settings = Settings::default();
    let origin = match explicit {
        Some((text, origin)) => {
            settings.read_connection_string(&text, origin)?;
            origin
        }
        None if KEYWORDS.iter().any(|keyword| {
            keyword.selects_server && keyword.variable.and_then(variables).is_some()
        }) =>
        {
            Origin::PgEnvironment
        }
        None => return Ok(None),
    };
    settings.read_service(variables)?;
    settings.read_variables(variables);
    settings.target(origin).map(Some)
}

/// A libpq connection keyword logctl acts on.
struct Keyword {
    name: &'static str,
    /// The variable libpq reads when the keyword is not set otherwise.
    variable: Option<&'static str>,
    /// Whether that variable alone means "connect there" rather than to the local instance.
    selects_server: bool,
}

const fn keyword(
    name: &'static str,
    variable: Option<&'static str>,
    selects_server: bool,
) -> Keyword {
    Keyword {
        name,
        variable,
        selects_server,
    }
}

const KEYWORDS: &[Keyword] = &[
    keyword("host", Some("PGHOST"), true),
    keyword("hostaddr", Some("PGHOSTADDR"), true),
    keyword("port", Some("PGPORT"), true),
    keyword("user", Some("PGUSER"), true),
    keyword("password", Some("PGPASSWORD"), true),
    keyword("dbname", Some("PGDATABASE"), true),
    keyword("service", Some("PGSERVICE"), true),
    keyword("sslmode", Some("PGSSLMODE"), true),
    keyword("application_name", Some("PGAPPNAME"), true),
    keyword("connect_timeout", Some("PGCONNECT_TIMEOUT"), true),
    keyword("passfile", Some("PGPASSFILE"), false),
    keyword("sslrootcert", Some("PGSSLROOTCERT"), false),
    keyword("sslnegotiation", Some("PGSSLNEGOTIATION"), false),
    keyword("options", Some("PGOPTIONS"), false),
    keyword("channel_binding", Some("PGCHANNELBINDING"), false),
    keyword("target_session_attrs", Some("PGTARGETSESSIONATTRS"), false),
    keyword("load_balance_hosts", Some("PGLOADBALANCEHOSTS"), false),
    keyword("gssencmode", Some("PGGSSENCMODE"), false),
    keyword("fallback_application_name", None, false),
    keyword("keepalives", None, false),
    keyword("keepalives_idle", None, false),
    keyword("keepalives_interval", None, false),
    keyword("keepalives_count", None, false),
    keyword("tcp_user_timeout", None, false),
];

/// libpq keywords logctl's connections can go without: the client encoding is always
/// UTF-8, GSSAPI is never used, and rustls never compresses and always sends SNI.
const WITHOUT_EFFECT: &[&str] = &[
    "client_encoding",
    "sslcompression",
    "sslsni",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
];

/// libpq keywords logctl cannot honour; ignoring them could weaken what the user asked for.
const UNSUPPORTED: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "require_auth",
    "replication",
];

/// Where a setting was read from, so that an error can name it.
#[derive(Debug, Clone)]
enum Place {
    Text(Origin),
    Variable(&'static str),
    Service {
        name: String,
        path: PathBuf,
        line: usize,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Text(origin) => origin.fmt(f),
            Place::Variable(variable) => f.write_str(variable),
            Place::Service { name, path, line } => {
                write!(f, "service `{name}` in {}, line {line}", path.display())
            }
        }
    }
}

#[derive(Debug)]
struct Setting {
    value: String,
    place: Place,
}

impl Setting {
    /// The error for a value that is not what `keyword` takes. Passwords are never
    /// checked, so the value shown is never one.
    fn invalid(&self, keyword: &str, expected: &str) -> Error {
        Error::BadSetting {
            place: self.place.to_string(),
            problem: format!("{keyword} `{}` is not {expected}", self.value),
        }
    }
}

/// libpq's connection parameters by keyword, merged from the sources in their order.
#[derive(Debug, Default)]
struct Settings(BTreeMap<&'static str, Setting>);

impl Settings {
    fn read_connection_string(&mut self, text: &str, origin: Origin) -> Result<(), Error> {
        let pairs = conninfo::parse(text).map_err(|problem| Error::BadConnectionString {
            place: origin.to_string(),
            problem,
        })?;
        for (keyword, value) in pairs {
            self.set(&keyword, value, Place::Text(origin), true)?;
        }
        Ok(())
    }

    /// The service's entries fill what the connection string left unset.
    fn read_service(&mut self, variables: Variables) -> Result<(), Error> {
        if !self.0.contains_key("service")
            && let Some(name) = variables("PGSERVICE")
        {
            let place = Place::Variable("PGSERVICE");
            self.0.insert("service", Setting { value: name, place });
        }
        let Some(Setting { value: name, place }) = self.0.get("service") else {
            return Ok(());
        };
        let name = name.clone();
        let files = service_file::search_path(variables);
        let Some(service) = service_file::find(&name, &files)? else {
            let searched: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            return Err(Error::UnknownService {
                name,
                place: place.to_string(),
                searched: searched.join(" or "),
            });
        };
        for entry in service.entries {
            let place = Place::Service {
                name: name.clone(),
                path: service.path.clone(),
                line: entry.line,
            };
            self.set(&entry.keyword, entry.value, place, false)?;
        }
        Ok(())
    }

    /// The `PG*` variables fill what is still unset.
    fn read_variables(&mut self, variables: Variables) {
        for keyword in KEYWORDS {
            if let Some(variable) = keyword.variable
                && !self.0.contains_key(keyword.name)
                && let Some(value) = variables(variable)
            {
                let place = Place::Variable(variable);
                self.0.insert(keyword.name, Setting { value, place });
            }
        }
    }

    /// Records a value, replacing an earlier one only if `replace`.
    fn set(&mut self, name: &str, value: String, place: Place, replace: bool) -> Result<(), Error> {
        let Some(keyword) = KEYWORDS.iter().find(|keyword| keyword.name == name) else {
            if WITHOUT_EFFECT.contains(&name) {
                return Ok(());
            }
            let problem = if UNSUPPORTED.contains(&name) {
                format!("logctl cannot use libpq's `{name}`; remove it")
            } else {
                format!("`{name}` is not a libpq connection parameter")
            };
            return Err(Error::BadSetting {
                place: place.to_string(),
                problem,
            });
        };
        if replace || !self.0.contains_key(keyword.name) {
            self.0.insert(keyword.name, Setting { value, place });
        }
        Ok(())
    }

    fn text(&self, keyword: &str) -> Option<&str> {
        self.0.get(keyword).map(|setting| setting.value.as_str())
    }

    /// The value of a keyword that takes one of a few words.
    fn choice<T: Copy>(&self, keyword: &str, choices: &[(&str, T)]) -> Result<Option<T>, Error> {
        let Some(setting) = self.0.get(keyword) else {
            return Ok(None);
        };
        match choices.iter().find(|(name, _)| *name == setting.value) {
            Some(&(_, chosen)) => Ok(Some(chosen)),
            None => {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                Err(setting.invalid(keyword, &format!("one of {}", names.join(", "))))
            }
        }
    }

    /// The value of a keyword that takes a whole number, as libpq's `parse_int_param` reads it.
    fn integer(&self, keyword: &str) -> Result<Option<i64>, Error> {
        let Some(setting) = self.0.get(keyword) else {
            return Ok(None);
        };
        match setting.value.trim().parse() {
            Ok(number) => Ok(Some(number)),
            Err(_) => Err(setting.invalid(keyword, "a whole number")),
        }
    }

    /// A duration in `unit`s, where zero or less means "none", as in libpq.
    fn duration(
        &self,
        keyword: &str,
        unit: fn(u64) -> Duration,
    ) -> Result<Option<Duration>, Error> {
        Ok(self
            .integer(keyword)?
            .filter(|&n| n > 0)
            .map(|n| unit(n as u64)))
    }

    /// A comma-separated list, each entry parsed; empty when the keyword is unset.
    fn list<T>(
        &self,
        keyword: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, Error> {
        let Some(setting) = self.0.get(keyword) else {
            return Ok(Vec::new());
        };
        setting
            .value
            .split(',')
            .map(|entry| {
                parse(entry).ok_or_else(|| Error::BadSetting {
                    place: setting.place.to_string(),
                    problem: format!("{keyword} entry `{entry}` is not {expected}"),
                })
            })
            .collect()
    }

    fn count_mismatch(&self, keyword: &str, given: usize, hosts: usize) -> Error {
        Error::BadSetting {
            place: self.0[keyword].place.to_string(),
            problem: format!(
                "{given} {keyword} values for {hosts} hosts; give one for all hosts or one per host"
            ),
        }
    }

    /// The tokio-postgres configuration, with libpq's defaults for what is unset.
    fn target(&self, origin: Origin) -> Result<Target, Error> {
        let mut config = tokio_postgres::Config::new();
        let hosts = self.list("host", "a host", |host| Some(host.to_string()))?;
        let addresses = self.list("hostaddr", "an IP address", |a| a.trim().parse().ok())?;
        let ports = self.list("port", "a port number (1-65535)", |port| {
            if port.is_empty() {
                Some(5432)
            } else {
                port.trim().parse().ok().filter(|&port: &u16| port != 0)
            }
        })?;
        if !hosts.is_empty() && !addresses.is_empty() && hosts.len() != addresses.len() {
            return Err(self.count_mismatch("hostaddr", addresses.len(), hosts.len()));
        }
        let servers = hosts.len().max(addresses.len()).max(1);
        if ports.len() > 1 && ports.len() != servers {
            return Err(self.count_mismatch("port", ports.len(), servers));
        }
        let default_socket = || default_socket_dir(ports.first().copied());
        if hosts.is_empty() && addresses.is_empty() {
            config.host_path(default_socket());
        }
        for host in &hosts {
            if host.is_empty() && addresses.is_empty() {
                config.host_path(default_socket());
            } else {
                config.host(host);
            }
        }
        for &address in &addresses {
            config.hostaddr(address);
        }
        for &port in &ports {
            config.port(port);
        }

        let user = self.text("user").map_or_else(os_user_name, str::to_string);
        let dbname = self.text("dbname").unwrap_or(&user).to_string();
        config.user(&user).dbname(&dbname);
        let password = match self.text("password") {
            Some(password) => Some(password.to_string()),
            None => pgpass::lookup(
                self.text("passfile").map(Path::new),
                &password_file_host(hosts.first().map(String::as_str), addresses.first()),
                ports.first().copied().unwrap_or(5432),
                &dbname,
                &user,
            ),
        };
        if let Some(password) = password {
            config.password(password);
        }
        config.application_name(
            self.text("application_name")
                .or(self.text("fallback_application_name"))
                .unwrap_or("logctl"),
        );
        if let Some(options) = self.text("options") {
            config.options(options);
        }

        // libpq waits at least 2 s; logctl bounds an unset timeout for the sake of cron runs.
        let connect_timeout = match self.integer("connect_timeout")? {
            None => Some(Duration::from_secs(10)),
            Some(seconds) if seconds > 0 => Some(Duration::from_secs(seconds.max(2) as u64)),
            Some(_) => None,
        };
        if let Some(timeout) = connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(timeout) = self.duration("tcp_user_timeout", Duration::from_millis)? {
            config.tcp_user_timeout(timeout);
        }
        if let Some(keepalives) = self.integer("keepalives")? {
            config.keepalives(keepalives != 0);
        }
        config.keepalives_idle(
            self.duration("keepalives_idle", Duration::from_secs)?
                .unwrap_or(Duration::from_secs(60)),
        );
        if let Some(interval) = self.duration("keepalives_interval", Duration::from_secs)? {
            config.keepalives_interval(interval);
        }
        if let Some(count) = self.integer("keepalives_count")? {
            config.keepalives_retries(count.clamp(0, u32::MAX as i64) as u32);
        }
        if let Some(attributes) = self.choice(
            "target_session_attrs",
            &[
                ("any", TargetSessionAttrs::Any),
                ("read-write", TargetSessionAttrs::ReadWrite),
                ("read-only", TargetSessionAttrs::ReadOnly),
            ],
        )? {
            config.target_session_attrs(attributes);
        }
        if let Some(balance) = self.choice(
            "load_balance_hosts",
            &[
                ("disable", LoadBalanceHosts::Disable),
                ("random", LoadBalanceHosts::Random),
            ],
        )? {
            config.load_balance_hosts(balance);
        }
        if let Some(binding) = self.choice(
            "channel_binding",
            &[
                ("disable", ChannelBinding::Disable),
                ("prefer", ChannelBinding::Prefer),
                ("require", ChannelBinding::Require),
            ],
        )? {
            config.channel_binding(binding);
        }
        if let Some(negotiation) = self.choice(
            "sslnegotiation",
            &[
                ("postgres", SslNegotiation::Postgres),
                ("direct", SslNegotiation::Direct),
            ],
        )? {
            config.ssl_negotiation(negotiation);
        }
        // logctl has no GSSAPI: only the values that let libpq go without it are accepted.
        self.choice("gssencmode", &[("disable", ()), ("prefer", ())])?;

        let ssl_mode = self
            .choice(
                "sslmode",
                &[
                    ("disable", SslMode::Disable),
                    ("allow", SslMode::Allow),
                    ("prefer", SslMode::Prefer),
                    ("require", SslMode::Require),
                    ("verify-ca", SslMode::VerifyCa),
                    ("verify-full", SslMode::VerifyFull),
                ],
            )?
            .unwrap_or(SslMode::Prefer);
        // libpq never uses TLS on a Unix socket, whatever sslmode says.
        let only_sockets = config.get_hostaddrs().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| matches!(host, Host::Unix(_)));
        config.ssl_mode(match ssl_mode {
            _ if only_sockets => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        Ok(Target {
            config,
            ssl_mode,
            ssl_root_cert: self.text("sslrootcert").map(PathBuf::from),
            origin,
        })
    }
}

/// libpq's compiled-in socket directory differs between builds; Debian uses
/// /var/run/postgresql, upstream /tmp.
const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// The default socket directory that has a socket for this port, else Debian's.
fn default_socket_dir(port: Option<u16>) -> PathBuf {
    let socket = format!(".s.PGSQL.{}", port.unwrap_or(5432));
    DEFAULT_SOCKET_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join(&socket).exists())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIRS[0]))
}

/// The host name a password-file line must match, as libpq picks it: the host, else
/// the `hostaddr`; a default socket directory (or none given) matches `localhost`.
fn password_file_host(host: Option<&str>, address: Option<&IpAddr>) -> String {
    match (host.filter(|host| !host.is_empty()), address) {
        (Some(host), _) if !DEFAULT_SOCKET_DIRS.contains(&host) => host.to_string(),
        (None, Some(address)) => address.to_string(),
        _ => "localhost".to_string(),
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

    /// Resolves with exactly these environment variables set.
    fn resolve_with(flag: Option<&str>, set: &[(&str, &str)]) -> Result<Option<Target>, Error> {
        let set: Vec<(String, String)> = set
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        resolve(flag, &move |name| {
            set.iter()
                .find(|(set_name, _)| set_name == name)
                .map(|(_, value)| value.clone())
        })
    }

    fn resolved(flag: &str, set: &[(&str, &str)]) -> Target {
        resolve_with(Some(flag), set).unwrap().unwrap()
    }

    fn error(flag: Option<&str>, set: &[(&str, &str)]) -> String {
        resolve_with(flag, set).unwrap_err().to_string()
    }

    /// A password file nobody matches, so that the developer's ~/.pgpass stays out of it.
    const NO_PASSWORDS: (&str, &str) = ("PGPASSFILE", "/nonexistent/pgpass");

    #[test]
    fn nothing_configured_means_the_local_instance() {
        assert!(resolve_with(None, &[]).unwrap().is_none());
        assert!(
            resolve_with(None, &[NO_PASSWORDS, ("PGSSLROOTCERT", "/x")])
                .unwrap()
                .is_none()
        );
        for variable in [
            "PGHOST",
            "PGHOSTADDR",
            "PGSERVICE",
            "PGDATABASE",
            "PGSSLMODE",
        ] {
            let value = if variable == "PGHOSTADDR" {
                "127.0.0.1"
            } else {
                "disable"
            };
            let configured = resolve_with(None, &[NO_PASSWORDS, (variable, value)]);
            assert!(
                !matches!(configured, Ok(None)),
                "{variable} alone counts as configured"
            );
        }
    }

    #[test]
    fn the_connection_string_wins_over_variables_that_fill_its_gaps() {
        let set = [
            NO_PASSWORDS,
            ("PGHOST", "variable-host"),
            ("PGUSER", "variable-user"),
            ("PGPORT", "7777"),
            ("PGAPPNAME", "from-variable"),
        ];
        let from_url = resolved("postgresql://url-host/logs?application_name=url", &set);
        assert_eq!(from_url.describe(), "variable-user@url-host:7777/logs");
        assert_eq!(from_url.config.get_application_name(), Some("url"));
        assert_eq!(from_url.origin, Origin::Flag);

        let from_variables = resolve_with(None, &set).unwrap().unwrap();
        assert_eq!(
            from_variables.describe(),
            "variable-user@variable-host:7777/variable-user"
        );
        assert_eq!(from_variables.origin, Origin::PgEnvironment);
        assert_eq!(
            from_variables.config.get_application_name(),
            Some("from-variable")
        );

        let database_url = resolve_with(None, &[NO_PASSWORDS, ("DATABASE_URL", "host=db")])
            .unwrap()
            .unwrap();
        assert_eq!(database_url.origin, Origin::DatabaseUrl);
        let flag_first = resolved("host=flag", &[NO_PASSWORDS, ("DATABASE_URL", "host=db")]);
        assert!(flag_first.describe().contains("@flag:5432/"));
    }

    #[test]
    fn quoted_values_and_tls_keys_come_out_of_the_parsed_parameters() {
        let target = resolved(
            r"host=h user=u dbname=d application_name='a  b\tc sslmode=x' sslmode=verify-full sslrootcert='/etc/my ca.pem'",
            &[NO_PASSWORDS],
        );
        assert_eq!(
            target.config.get_application_name(),
            Some("a  btc sslmode=x")
        );
        assert_eq!(target.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            target.ssl_root_cert.as_deref(),
            Some(Path::new("/etc/my ca.pem"))
        );
        let url = resolved(
            "postgresql://h/d?sslmode=verify-ca&sslrootcert=%2Fca.pem",
            &[NO_PASSWORDS],
        );
        assert_eq!(url.ssl_mode, SslMode::VerifyCa);
        assert_eq!(url.ssl_root_cert.as_deref(), Some(Path::new("/ca.pem")));
    }

    #[test]
    fn hosts_addresses_and_ports_as_libpq_lists_them() {
        let target = resolved(
            "host=a.example,b.example hostaddr=127.0.0.1,::1 port=5433,5434 user=u dbname=d",
            &[NO_PASSWORDS],
        );
        assert_eq!(target.config.get_hosts().len(), 2);
        assert_eq!(
            target.describe(),
            "u@a.example (127.0.0.1):5433,b.example ([::1]):5434/d"
        );
        let only_address = resolved("hostaddr=127.0.0.1 user=u dbname=d", &[NO_PASSWORDS]);
        assert!(only_address.config.get_hosts().is_empty());
        assert_eq!(only_address.describe(), "u@127.0.0.1:5432/d");
        let one_port = resolved("host=a,b port=6000 user=u dbname=d", &[NO_PASSWORDS]);
        assert_eq!(one_port.describe(), "u@a:6000,b:6000/d");

        let mismatch = error(Some("host=a,b port=1,2,3"), &[NO_PASSWORDS]);
        assert!(mismatch.contains("3 port values for 2 hosts"), "{mismatch}");
        let mismatch = error(Some("host=a,b hostaddr=127.0.0.1"), &[NO_PASSWORDS]);
        assert!(
            mismatch.contains("1 hostaddr values for 2 hosts"),
            "{mismatch}"
        );
        let bad_address = error(None, &[NO_PASSWORDS, ("PGHOSTADDR", "db.example")]);
        assert!(
            bad_address.contains("PGHOSTADDR") && bad_address.contains("`db.example`"),
            "{bad_address}"
        );
    }

    #[test]
    fn sockets_never_use_tls_as_in_libpq() {
        let socket = resolved("host=/run/pg sslmode=require", &[NO_PASSWORDS]);
        assert_eq!(socket.ssl_mode, SslMode::Require);
        assert_eq!(
            socket.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let tcp = resolved("host=db sslmode=require", &[NO_PASSWORDS]);
        assert_eq!(
            tcp.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn bad_settings_name_the_keyword_and_where_it_was_set() {
        /// The flag, the variables, and what the message must contain.
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                Some("host=h port=abc"),
                &[],
                &["--database-url", "port entry `abc`"],
            ),
            (None, &[("PGPORT", "0")], &["PGPORT", "port entry `0`"]),
            (
                None,
                &[("DATABASE_URL", "host=h sslmode=bogus")],
                &["DATABASE_URL", "sslmode `bogus`", "verify-full"],
            ),
            (
                None,
                &[("PGHOST", "h"), ("PGCONNECT_TIMEOUT", "soon")],
                &["PGCONNECT_TIMEOUT"],
            ),
            (
                Some("host=h nosuch=1"),
                &[],
                &["`nosuch` is not a libpq connection parameter"],
            ),
            (
                Some("host=h sslcert=/c.pem"),
                &[],
                &["cannot use libpq's `sslcert`"],
            ),
            (
                Some("postgresql://h/db?gssencmode=require"),
                &[],
                &["gssencmode `require`"],
            ),
            (
                Some("host=h target_session_attrs=standby"),
                &[],
                &["target_session_attrs `standby`", "read-only"],
            ),
            (
                Some("postgresql://u:s3cret@h:port/db"),
                &[],
                &["--database-url", "port entry `port`"],
            ),
            (
                Some("host=h dbname='open"),
                &[],
                &[
                    "cannot read the connection string in --database-url",
                    "`dbname` has no closing",
                ],
            ),
        ];
        for (flag, set, expected) in cases {
            let mut set = set.to_vec();
            set.push(NO_PASSWORDS);
            let shown = error(*flag, &set);
            for part in *expected {
                assert!(shown.contains(part), "{flag:?} {set:?}: {shown}");
            }
            assert!(shown.contains("\nhint: "), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        let harmless = resolved("host=h client_encoding=LATIN1 sslsni=0", &[NO_PASSWORDS]);
        assert!(harmless.describe().contains("@h:5432/"));
    }

    #[test]
    fn a_service_fills_in_below_explicit_settings_and_above_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "[logs]\nhost=service-host\ndbname=service-db\nuser=service-user\nport=6543\n\
             [broken]\nhost=h\nbogus=1\n",
        )
        .unwrap();
        let file = file.display().to_string();
        let empty_sysconf = dir.path().display().to_string();
        let set = [
            NO_PASSWORDS,
            ("PGSERVICEFILE", file.as_str()),
            ("PGSYSCONFDIR", empty_sysconf.as_str()),
            ("PGUSER", "variable-user"),
            ("PGPORT", "7777"),
        ];
        let explicit = resolved("service=logs dbname=explicit-db", &set);
        assert_eq!(
            explicit.describe(),
            "service-user@service-host:6543/explicit-db"
        );

        let mut with_pgservice = set.to_vec();
        with_pgservice.push(("PGSERVICE", "logs"));
        let from_variable = resolve_with(None, &with_pgservice).unwrap().unwrap();
        assert_eq!(
            from_variable.describe(),
            "service-user@service-host:6543/service-db"
        );
        assert_eq!(from_variable.origin, Origin::PgEnvironment);
        let url_over_service = resolved("postgresql://url-host", &with_pgservice);
        assert_eq!(
            url_over_service.describe(),
            "service-user@url-host:6543/service-db"
        );

        let unknown = error(Some("service=nosuch"), &set);
        assert!(
            unknown.contains("service `nosuch` (from --database-url)")
                && unknown.contains(&file)
                && unknown.contains(&format!("{empty_sysconf}/pg_service.conf")),
            "{unknown}"
        );
        let broken = error(Some("service=broken"), &set);
        assert!(
            broken.contains(&format!("service `broken` in {file}, line 8"))
                && broken.contains("`bogus`"),
            "{broken}"
        );
    }

    #[test]
    fn the_password_file_is_matched_as_libpq_matches_it() {
        assert_eq!(password_file_host(Some("db.example"), None), "db.example");
        assert_eq!(password_file_host(Some("/run/custom"), None), "/run/custom");
        assert_eq!(password_file_host(Some("/tmp"), None), "localhost");
        assert_eq!(password_file_host(None, None), "localhost");
        let address: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(password_file_host(None, Some(&address)), "10.1.2.3");
        assert_eq!(password_file_host(Some(""), Some(&address)), "10.1.2.3");

        let dir = tempfile::tempdir().unwrap();
        let passfile = dir.path().join("pgpass");
        std::fs::write(&passfile, "db.example:6543:logs:alice:from-file\n").unwrap();
        std::fs::set_permissions(
            &passfile,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let passfile = passfile.display().to_string();
        let found = resolved(
            &format!("postgresql://alice@db.example:6543/logs?passfile={passfile}"),
            &[],
        );
        assert_eq!(found.config.get_password(), Some(&b"from-file"[..]));
        let explicit = resolved(
            "postgresql://alice:given@db.example:6543/logs",
            &[("PGPASSFILE", passfile.as_str())],
        );
        assert_eq!(explicit.config.get_password(), Some(&b"given"[..]));
    }

    #[test]
    fn describe_never_shows_the_password() {
        let target = resolved(
            "postgresql://alice:s3cret@db.example:6543/logs",
            &[NO_PASSWORDS],
        );
        let shown = target.describe();
        assert_eq!(shown, "alice@db.example:6543/logs");
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
