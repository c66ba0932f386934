//! Log shapes: which keys of a log line feed which typed column. A shape is a
//! table of keys per nesting level, looked up once per key while walking a line.

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
}

pub const FIELD_COUNT: usize = 9;

impl Field {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::CreatedAt => "created_at",
            Field::Service => "service",
            Field::Level => "level",
            Field::Message => "message",
            Field::Endpoint => "endpoint",
            Field::Method => "method",
            Field::Status => "status",
            Field::LatencyMs => "latency_ms",
            Field::RequestId => "request_id",
        }
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
}

/// What a key means at one level of a shape.
#[derive(Debug, Clone)]
pub enum Action {
    /// The value feeds a column; lower priority wins when several keys feed the same one.
    Column {
        field: Field,
        priority: u8,
        unit: Unit,
    },
    /// An object whose own keys are looked up in a nested table; it is kept whole in metadata.
    Nested(KeyTable),
    /// An object whose keys are looked up in a nested table and merged into metadata's top level.
    Flatten(KeyTable),
}

/// Keys of one nesting level, bucketed by length so a lookup compares few strings.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    by_length: Vec<Vec<(Box<str>, Action)>>,
}

impl KeyTable {
    pub fn get(&self, key: &str) -> Option<&Action> {
        self.by_length
            .get(key.len())?
            .iter()
            .find(|(candidate, _)| **candidate == *key)
            .map(|(_, action)| action)
    }

    pub fn insert(&mut self, key: &str, action: Action) {
        if self.by_length.len() <= key.len() {
            self.by_length.resize_with(key.len() + 1, Vec::new);
        }
        let bucket = &mut self.by_length[key.len()];
        bucket.retain(|(existing, _)| **existing != *key);
        bucket.push((key.into(), action));
    }

    /// Adds a column mapping at a dotted path, creating nested tables as needed.
    /// The flat key (`"http.request.method"`, as some ECS libraries write) is mapped too.
    pub fn map_path(&mut self, path: &str, field: Field, priority: u8, unit: Unit) {
        let column = Action::Column {
            field,
            priority,
            unit,
        };
        if path.contains('.') {
            self.insert(path, column.clone());
        }
        let mut table = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part, column);
                return;
            }
            if !matches!(
                table.get(part),
                Some(Action::Nested(_) | Action::Flatten(_))
            ) {
                table.insert(part, Action::Nested(KeyTable::default()));
            }
            let bucket = &mut table.by_length[part.len()];
            let (_, action) = bucket
                .iter_mut()
                .find(|(candidate, _)| **candidate == *part)
                .expect("inserted just above");
            table = match action {
                Action::Nested(inner) | Action::Flatten(inner) => inner,
                Action::Column { .. } => unreachable!("replaced just above"),
            };
        }
    }
}

/// A named set of key mappings.
#[derive(Debug, Clone)]
pub struct Shape {
    pub name: &'static str,
    pub root: KeyTable,
}

/// The request fields, at the top level or inside a `metadata` object.
const REQUEST_FIELDS: [(&str, Field); 5] = [
    ("latency_ms", Field::LatencyMs),
    ("endpoint", Field::Endpoint),
    ("method", Field::Method),
    ("status", Field::Status),
    ("request_id", Field::RequestId),
];

impl Shape {
    /// The keys that feed a column, best first, for messages such as "no timestamp (looked for ...)".
    pub fn keys_for(&self, field: Field) -> Vec<String> {
        fn walk(table: &KeyTable, prefix: &str, field: Field, out: &mut Vec<(u8, String)>) {
            for (key, action) in table.by_length.iter().flatten() {
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                match action {
                    Action::Column {
                        field: f, priority, ..
                    } if *f == field => out.push((*priority, path)),
                    Action::Column { .. } => {}
                    Action::Nested(inner) | Action::Flatten(inner) => {
                        walk(inner, &path, field, out)
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.root, "", field, &mut found);
        found.sort();
        let mut keys: Vec<String> = Vec::new();
        for (_, key) in found {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// logctl's own shape, and what most hand-written JSON loggers emit.
    pub fn generic() -> Shape {
        let mut root = KeyTable::default();
        for (priority, key) in ["ts", "timestamp", "time", "@timestamp"]
            .into_iter()
            .enumerate()
        {
            root.map_path(key, Field::CreatedAt, priority as u8, Unit::Milliseconds);
        }
        for (priority, key) in ["service", "service_name"].into_iter().enumerate() {
            root.map_path(key, Field::Service, priority as u8, Unit::Milliseconds);
        }
        root.map_path("level", Field::Level, 0, Unit::Milliseconds);
        for (priority, key) in ["message", "msg"].into_iter().enumerate() {
            root.map_path(key, Field::Message, priority as u8, Unit::Milliseconds);
        }
        let mut metadata = KeyTable::default();
        for (key, field) in REQUEST_FIELDS {
            root.map_path(key, field, 0, Unit::Milliseconds);
            metadata.map_path(key, field, 1, Unit::Milliseconds);
        }
        root.insert("metadata", Action::Flatten(metadata));
        Shape {
            name: "generic",
            root,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_map_both_nested_and_flat_keys() {
        let mut table = KeyTable::default();
        table.map_path("http.request.method", Field::Method, 0, Unit::Milliseconds);
        table.map_path(
            "http.response.status_code",
            Field::Status,
            0,
            Unit::Milliseconds,
        );
        assert!(matches!(
            table.get("http.request.method"),
            Some(Action::Column {
                field: Field::Method,
                ..
            })
        ));
        let Some(Action::Nested(http)) = table.get("http") else {
            panic!("http is nested")
        };
        let Some(Action::Nested(response)) = http.get("response") else {
            panic!("response is nested")
        };
        assert!(matches!(
            response.get("status_code"),
            Some(Action::Column {
                field: Field::Status,
                ..
            })
        ));
        assert!(http.get("request").is_some());
    }
}
