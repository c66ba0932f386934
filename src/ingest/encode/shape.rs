//! Log shapes: which keys of a log line feed which typed column. A shape is a
//! table of keys per nesting level, looked up once per key while walking a line.
//! Every built-in shape extends logctl's generic one, so detection (per line, from
//! the top-level keys) only decides what differs: units, nested paths, fallbacks.

use std::collections::BTreeMap;

use crate::Error;

/// The typed columns a line's fields can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CreatedAt,
    Service,
    Level,
    Message,
    Endpoint,
    Method,
    Status,
    LatencyMs,
    RequestId,
    /// An HTTP request line ("GET /path HTTP/1.1"): method and endpoint when those are missing.
    RequestLine,
}

pub const FIELD_COUNT: usize = 10;

impl Field {
    pub fn index(self) -> usize {
        self as usize
    }

    /// The names `--map` and the config file use.
    pub fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "created_at" => Field::CreatedAt,
            "service" => Field::Service,
            "level" => Field::Level,
            "message" => Field::Message,
            "endpoint" => Field::Endpoint,
            "method" => Field::Method,
            "status" => Field::Status,
            "latency_ms" => Field::LatencyMs,
            "request_id" => Field::RequestId,
            _ => return None,
        })
    }
}

/// The unit a duration field is written in, when it is a bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn to_millis(self, value: f64) -> f64 {
        match self {
            Unit::Nanoseconds => value / 1e6,
            Unit::Microseconds => value / 1e3,
            Unit::Milliseconds => value,
            Unit::Seconds => value * 1e3,
        }
    }

    pub fn from_name(name: &str) -> Option<Unit> {
        Some(match name {
            "ns" => Unit::Nanoseconds,
            "us" | "µs" => Unit::Microseconds,
            "ms" => Unit::Milliseconds,
            "s" => Unit::Seconds,
            _ => return None,
        })
    }
}

/// A key feeding a column. Lower priority wins when several keys feed the same column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub field: Field,
    pub priority: u8,
    pub unit: Unit,
}

/// What a key means at one level of a shape: a column when its value is a scalar,
/// a nested table when it is an object (`service` can be either).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub column: Option<Column>,
    pub nested: Option<KeyTable>,
    /// The nested object's keys are merged into metadata's top level (logctl's own
    /// `metadata` object); otherwise the object is kept whole.
    pub flatten: bool,
}

/// Keys of one nesting level, bucketed by length, each with its first eight bytes as a
/// number: a lookup (once per key of every line) compares one word before any bytes.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    by_length: Vec<Vec<(u64, Box<str>, Entry)>>,
}

/// The first eight bytes of a key, zero-padded, as one word.
fn prefix_word(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let mut word = [0u8; 8];
    let length = bytes.len().min(8);
    word[..length].copy_from_slice(&bytes[..length]);
    u64::from_ne_bytes(word)
}

impl KeyTable {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        let bucket = self.by_length.get(key.len())?;
        if bucket.is_empty() {
            return None;
        }
        let word = prefix_word(key);
        bucket
            .iter()
            .find(|(candidate_word, candidate, _)| {
                *candidate_word == word
                    && (key.len() <= 8 || candidate.as_bytes()[8..] == key.as_bytes()[8..])
            })
            .map(|(_, _, entry)| entry)
    }

    fn entry(&mut self, key: &str) -> &mut Entry {
        if self.by_length.len() <= key.len() {
            self.by_length.resize_with(key.len() + 1, Vec::new);
        }
        let bucket = &mut self.by_length[key.len()];
        let position = match bucket
            .iter()
            .position(|(_, candidate, _)| **candidate == *key)
        {
            Some(position) => position,
            None => {
                bucket.push((prefix_word(key), key.into(), Entry::default()));
                bucket.len() - 1
            }
        };
        &mut bucket[position].2
    }

    /// Maps a dotted path to a column, creating nested tables as needed. The flat key
    /// (`"http.request.method"`, as some ECS libraries write) is mapped too. A path
    /// mapped twice keeps the better priority.
    pub fn map_path(&mut self, path: &str, column: Column) {
        if path.contains('.') {
            self.set_column(path, column);
        }
        let mut table = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.set_column(part, column);
                return;
            }
            table = table
                .entry(part)
                .nested
                .get_or_insert_with(KeyTable::default);
        }
    }

    fn set_column(&mut self, key: &str, column: Column) {
        let entry = self.entry(key);
        if entry
            .column
            .is_none_or(|existing| column.priority < existing.priority)
        {
            entry.column = Some(column);
        }
    }

    /// Makes `key` an object whose keys are merged into metadata's top level.
    fn flatten(&mut self, key: &str) -> &mut KeyTable {
        let entry = self.entry(key);
        entry.flatten = true;
        entry.nested.get_or_insert_with(KeyTable::default)
    }

    fn paths(&self, prefix: &str, field: Field, out: &mut Vec<(u8, String)>) {
        for (_, key, entry) in self.by_length.iter().flatten() {
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            if let Some(column) = entry.column.filter(|c| c.field == field) {
                out.push((column.priority, path.clone()));
            }
            if let Some(nested) = &entry.nested {
                nested.paths(&path, field, out);
            }
        }
    }
}

/// A named set of key mappings.
#[derive(Debug, Clone)]
pub struct Shape {
    pub name: &'static str,
    pub root: KeyTable,
    /// The service of lines that name none (an nginx access log names no service).
    pub default_service: Option<String>,
    /// A key whose string value may itself be a JSON log line (Docker's `log`).
    pub inner_line: Option<&'static str>,
}

/// Priorities: `--map` beats a shape's own keys, which beat the generic ones.
const MAPPED: u8 = 0;
const SHAPE: u8 = 10;
const GENERIC: u8 = 20;

/// The built-in shapes, by the name `--shape` takes.
pub const SHAPE_NAMES: [&str; 7] = ["generic", "ecs", "pino", "zap", "slog", "nginx", "docker"];

impl Shape {
    /// A built-in shape by name.
    pub fn builtin(name: &str) -> Option<Shape> {
        let mut shape = Shape {
            name: SHAPE_NAMES.iter().copied().find(|n| *n == name)?,
            root: generic_table(),
            default_service: None,
            inner_line: None,
        };
        let specific: &[(&str, Field, Unit)] = match name {
            "generic" => &[],
            "ecs" => &[
                ("service.name", Field::Service, Unit::Milliseconds),
                ("log.level", Field::Level, Unit::Milliseconds),
                ("event.duration", Field::LatencyMs, Unit::Nanoseconds),
                ("http.request.method", Field::Method, Unit::Milliseconds),
                (
                    "http.response.status_code",
                    Field::Status,
                    Unit::Milliseconds,
                ),
                ("url.path", Field::Endpoint, Unit::Milliseconds),
                ("url.original", Field::Endpoint, Unit::Milliseconds),
                ("http.request.id", Field::RequestId, Unit::Milliseconds),
                ("trace.id", Field::RequestId, Unit::Milliseconds),
            ],
            "pino" => &[
                ("responseTime", Field::LatencyMs, Unit::Milliseconds),
                ("req.method", Field::Method, Unit::Milliseconds),
                ("req.url", Field::Endpoint, Unit::Milliseconds),
                ("req.id", Field::RequestId, Unit::Milliseconds),
                ("res.statusCode", Field::Status, Unit::Milliseconds),
                ("name", Field::Service, Unit::Milliseconds),
            ],
            "zap" => &[
                ("duration", Field::LatencyMs, Unit::Seconds),
                ("elapsed", Field::LatencyMs, Unit::Seconds),
                ("path", Field::Endpoint, Unit::Milliseconds),
                ("url", Field::Endpoint, Unit::Milliseconds),
                ("logger", Field::Service, Unit::Milliseconds),
            ],
            "slog" => &[
                ("duration", Field::LatencyMs, Unit::Nanoseconds),
                ("elapsed", Field::LatencyMs, Unit::Nanoseconds),
                ("path", Field::Endpoint, Unit::Milliseconds),
                ("url", Field::Endpoint, Unit::Milliseconds),
            ],
            "nginx" => &[
                ("time_iso8601", Field::CreatedAt, Unit::Milliseconds),
                ("time_local", Field::CreatedAt, Unit::Milliseconds),
                ("request_method", Field::Method, Unit::Milliseconds),
                ("uri", Field::Endpoint, Unit::Milliseconds),
                ("request_uri", Field::Endpoint, Unit::Milliseconds),
                ("request", Field::RequestLine, Unit::Milliseconds),
                ("request_time", Field::LatencyMs, Unit::Seconds),
                ("server_name", Field::Service, Unit::Milliseconds),
                ("host", Field::Service, Unit::Milliseconds),
                ("http_host", Field::Service, Unit::Milliseconds),
            ],
            "docker" => &[("log", Field::Message, Unit::Milliseconds)],
            _ => unreachable!("names come from SHAPE_NAMES"),
        };
        for (order, (path, field, unit)) in specific.iter().enumerate() {
            shape.root.map_path(
                path,
                Column {
                    field: *field,
                    priority: SHAPE + order as u8,
                    unit: *unit,
                },
            );
        }
        match name {
            "nginx" => shape.default_service = Some("nginx".into()),
            "docker" => {
                shape.default_service = Some("docker".into());
                shape.inner_line = Some("log");
            }
            _ => {}
        }
        Some(shape)
    }

    /// Adds a `--map` mapping, which wins over the shape's own keys.
    pub fn map(&mut self, mapping: &Mapping) {
        self.root.map_path(
            &mapping.path,
            Column {
                field: mapping.field,
                priority: MAPPED,
                unit: mapping.unit,
            },
        );
    }

    /// The keys that feed a column, best first, for messages such as "no timestamp (looked for ...)".
    pub fn keys_for(&self, field: Field) -> Vec<String> {
        let mut found = Vec::new();
        self.root.paths("", field, &mut found);
        found.sort();
        let mut keys: Vec<String> = Vec::new();
        for (_, key) in found {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }
}

/// logctl's own shape, and what most hand-written JSON loggers emit: the request
/// fields at the top level or inside a `metadata` object.
fn generic_table() -> KeyTable {
    let mut root = KeyTable::default();
    let add = |table: &mut KeyTable, keys: &[&str], field: Field, base: u8| {
        for (order, key) in keys.iter().enumerate() {
            table.map_path(
                key,
                Column {
                    field,
                    priority: base + order as u8,
                    unit: Unit::Milliseconds,
                },
            );
        }
    };
    add(
        &mut root,
        &["ts", "timestamp", "time", "@timestamp"],
        Field::CreatedAt,
        GENERIC,
    );
    add(
        &mut root,
        &["service", "service_name"],
        Field::Service,
        GENERIC,
    );
    add(&mut root, &["level", "severity"], Field::Level, GENERIC);
    add(&mut root, &["message", "msg"], Field::Message, GENERIC);
    const REQUEST_FIELDS: [(&str, Field); 5] = [
        ("latency_ms", Field::LatencyMs),
        ("endpoint", Field::Endpoint),
        ("method", Field::Method),
        ("status", Field::Status),
        ("request_id", Field::RequestId),
    ];
    let mut metadata = KeyTable::default();
    for (key, field) in REQUEST_FIELDS {
        add(&mut root, &[key], field, GENERIC);
        add(&mut metadata, &[key], field, GENERIC + 5);
    }
    *root.flatten("metadata") = metadata;
    root
}

/// A `--map COLUMN=PATH[:UNIT]` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub field: Field,
    pub path: String,
    pub unit: Unit,
}

impl std::str::FromStr for Mapping {
    type Err = Error;
    fn from_str(text: &str) -> Result<Mapping, Error> {
        let (column, target) = text.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "`{text}`: a mapping is COLUMN=PATH[:UNIT], e.g. latency_ms=timings.total:s"
            ))
        })?;
        let field = Field::from_name(column.trim()).ok_or_else(|| {
            Error::Usage(format!(
                "`{column}` is not a column; use one of created_at, service, level, message, endpoint, method, \
                 status, latency_ms, request_id"
            ))
        })?;
        let (path, unit) = match target.rsplit_once(':') {
            Some((path, unit)) => {
                let unit = Unit::from_name(unit.trim()).ok_or_else(|| {
                    Error::Usage(format!("`{unit}` is not a unit; use ns, us, ms or s"))
                })?;
                if field != Field::LatencyMs {
                    return Err(Error::Usage(format!(
                        "`{text}`: only latency_ms takes a unit"
                    )));
                }
                (path, unit)
            }
            None => (target, Unit::Milliseconds),
        };
        let path = path.trim();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(Error::Usage(format!(
                "`{text}`: the path must be keys separated by dots"
            )));
        }
        Ok(Mapping {
            field,
            path: path.to_string(),
            unit,
        })
    }
}

/// Which shape each line is read with: one forced by `--shape`, or each line's own.
#[derive(Debug, Clone)]
pub enum ShapeChoice {
    Fixed(Box<Shape>),
    Detect(BTreeMap<&'static str, Shape>),
}

impl ShapeChoice {
    /// All built-in shapes (with the mappings and default service applied), detected per line,
    /// or the one named.
    pub fn new(
        forced: Option<&str>,
        mappings: &[Mapping],
        default_service: Option<&str>,
    ) -> Result<ShapeChoice, Error> {
        let prepare = |mut shape: Shape| {
            for mapping in mappings {
                shape.map(mapping);
            }
            if let Some(service) = default_service {
                shape.default_service = Some(service.to_string());
            }
            shape
        };
        match forced {
            Some(name) => {
                let shape = Shape::builtin(name).ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown shape `{name}`; use one of {}",
                        SHAPE_NAMES.join(", ")
                    ))
                })?;
                Ok(ShapeChoice::Fixed(Box::new(prepare(shape))))
            }
            None => Ok(ShapeChoice::Detect(
                SHAPE_NAMES
                    .iter()
                    .map(|name| (*name, prepare(Shape::builtin(name).expect("built in"))))
                    .collect(),
            )),
        }
    }

    /// The shape for a line with these top-level keys.
    pub fn pick<'k>(&self, keys: impl Iterator<Item = &'k str>) -> &Shape {
        match self {
            ShapeChoice::Fixed(shape) => shape,
            ShapeChoice::Detect(shapes) => &shapes[detect(keys)],
        }
    }
}

/// Names the shape a line's top-level keys point to. Cheap: one match per key.
pub fn detect<'k>(keys: impl Iterator<Item = &'k str>) -> &'static str {
    const ECS: u16 = 1;
    const AT_TIMESTAMP: u16 = 1 << 1;
    const DOCKER_LOG: u16 = 1 << 2;
    const DOCKER_STREAM: u16 = 1 << 3;
    const NGINX: u16 = 1 << 4;
    const TS: u16 = 1 << 5;
    const CALLER: u16 = 1 << 6;
    const PID: u16 = 1 << 7;
    const HOSTNAME: u16 = 1 << 8;
    const TIME: u16 = 1 << 9;
    const MSG: u16 = 1 << 10;
    const LEVEL: u16 = 1 << 11;
    const REQ_RES: u16 = 1 << 12;
    let mut seen = 0u16;
    for key in keys {
        seen |= match key {
            "ecs" | "ecs.version" | "log.level" | "service.name" | "event.dataset" => ECS,
            "@timestamp" => AT_TIMESTAMP,
            "log" => DOCKER_LOG,
            "stream" => DOCKER_STREAM,
            "time_iso8601"
            | "time_local"
            | "request_time"
            | "remote_addr"
            | "request_method"
            | "upstream_response_time"
            | "body_bytes_sent" => NGINX,
            "ts" => TS,
            "caller" => CALLER,
            "pid" => PID,
            "hostname" => HOSTNAME,
            "time" => TIME,
            "msg" => MSG,
            "level" => LEVEL,
            "req" | "res" | "responseTime" => REQ_RES,
            _ => 0,
        };
    }
    let all = |flags: u16| seen & flags == flags;
    if all(DOCKER_LOG | DOCKER_STREAM | TIME) {
        "docker"
    } else if seen & ECS != 0 || all(AT_TIMESTAMP | DOCKER_LOG) {
        "ecs"
    } else if seen & NGINX != 0 {
        "nginx"
    } else if all(TS | CALLER) {
        "zap"
    } else if all(PID | HOSTNAME) || seen & REQ_RES != 0 {
        "pino"
    } else if all(TIME | MSG | LEVEL) && seen & TS == 0 {
        "slog"
    } else {
        "generic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_map_nested_and_flat_keys_and_a_key_can_be_both() {
        let ecs = Shape::builtin("ecs").unwrap();
        let method = ecs
            .root
            .get("http.request.method")
            .and_then(|e| e.column)
            .unwrap();
        assert_eq!(method.field, Field::Method);
        let service = ecs.root.get("service").unwrap();
        assert_eq!(
            service.column.unwrap().field,
            Field::Service,
            "a plain string service still works"
        );
        let name = service.nested.as_ref().unwrap().get("name").unwrap();
        assert_eq!(name.column.unwrap().field, Field::Service);
        assert_eq!(ecs.keys_for(Field::Service)[0], "service.name");
    }

    #[test]
    fn detection_reads_the_top_level_keys() {
        let shape = |keys: &[&str]| detect(keys.iter().copied());
        assert_eq!(
            shape(&["@timestamp", "log.level", "message", "ecs.version"]),
            "ecs"
        );
        assert_eq!(shape(&["@timestamp", "log", "message", "service"]), "ecs");
        assert_eq!(
            shape(&["level", "time", "pid", "hostname", "msg", "req", "res"]),
            "pino"
        );
        assert_eq!(shape(&["level", "ts", "caller", "msg"]), "zap");
        assert_eq!(shape(&["time", "level", "msg", "duration"]), "slog");
        assert_eq!(
            shape(&["time_iso8601", "request", "status", "request_time"]),
            "nginx"
        );
        assert_eq!(shape(&["log", "stream", "time"]), "docker");
        assert_eq!(
            shape(&["ts", "service", "level", "msg", "latency_ms"]),
            "generic"
        );
        assert_eq!(
            shape(&["timestamp", "service", "message", "metadata"]),
            "generic"
        );
    }

    #[test]
    fn mappings_parse_and_win() {
        let mapping: Mapping = "latency_ms=timings.total:s".parse().unwrap();
        assert_eq!(
            mapping,
            Mapping {
                field: Field::LatencyMs,
                path: "timings.total".into(),
                unit: Unit::Seconds
            }
        );
        assert!("latency=x".parse::<Mapping>().is_err());
        assert!("created_at=a:s".parse::<Mapping>().is_err());
        assert!("latency_ms=a:h".parse::<Mapping>().is_err());
        assert!("service=a..b".parse::<Mapping>().is_err());
        let mut shape = Shape::builtin("generic").unwrap();
        shape.map(&"created_at=event.created".parse().unwrap());
        assert_eq!(shape.keys_for(Field::CreatedAt)[0], "event.created");
    }
}
