//! The reports' window and filters over raw rows: one SQL predicate
//! (`sql/report_filter.sql`), put in each report query in place of `{{filter}}`, and the
//! values it binds as parameters $1 to $10 (never spliced into the SQL).

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use crate::analytics::read::{Filter, StatusFilter};

const PREDICATE: &str = include_str!("../../sql/report_filter.sql");

/// A report query with the shared predicate in place of `{{filter}}`; its own
/// parameters start at $11.
pub fn with_filter(query: &str) -> String {
    query.replace("{{filter}}", PREDICATE)
}

/// The predicate's parameters.
#[derive(Debug, Clone)]
pub struct RawFilter {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    services: Option<Vec<String>>,
    route: Option<String>,
    codes: Vec<i16>,
    classes: Vec<i16>,
    levels: Vec<String>,
    methods: Vec<String>,
    paths: Vec<String>,
    values: Vec<String>,
}

impl RawFilter {
    /// The rows of [from, until) that `filter` keeps, as the read API keeps them.
    pub fn new(filter: &Filter, from: DateTime<Utc>, until: DateTime<Utc>) -> RawFilter {
        let (codes, classes) = filter.statuses.iter().fold(
            (Vec::new(), Vec::new()),
            |(mut codes, mut classes), status| {
                match *status {
                    StatusFilter::Exact(code) => codes.push(code),
                    StatusFilter::Class(class) => classes.push(class),
                }
                (codes, classes)
            },
        );
        let (paths, values) = filter
            .metadata
            .iter()
            .map(|(path, value)| (format!("{{{}}}", path.join(",")), value.clone()))
            .unzip();
        RawFilter {
            from,
            until,
            services: (!filter.services.is_empty()).then(|| filter.services.clone()),
            route: filter.route.as_deref().map(like_pattern),
            codes,
            classes,
            levels: filter
                .levels
                .iter()
                .map(|l| l.to_ascii_lowercase())
                .collect(),
            methods: filter
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            paths,
            values,
        }
    }

    /// The same filter over another period (the one a report is compared with).
    pub fn over(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> RawFilter {
        RawFilter {
            from,
            until,
            ..self.clone()
        }
    }

    /// Parameters $1 to $10, for a query made by `with_filter`.
    pub fn parameters(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.from,
            &self.until,
            &self.services,
            &self.route,
            &self.codes,
            &self.classes,
            &self.levels,
            &self.methods,
            &self.paths,
            &self.values,
        ]
    }
}

/// A route pattern (`*` any text, `?` one character) as a LIKE pattern.
fn like_pattern(glob: &str) -> String {
    let mut pattern = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => pattern.push('%'),
            '?' => pattern.push('_'),
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(c);
            }
            c => pattern.push(c),
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_become_like_patterns_with_like_characters_escaped() {
        assert_eq!(like_pattern("/api/*/orders/:id"), "/api/%/orders/:id");
        assert_eq!(like_pattern("/a?c_100%\\"), "/a_c\\_100\\%\\\\");
    }

    #[test]
    fn every_parameter_is_in_the_predicate_once_numbered() {
        let filter = RawFilter::new(&Filter::default(), DateTime::UNIX_EPOCH, Utc::now());
        let count = filter.parameters().len();
        for number in 1..=count {
            assert!(PREDICATE.contains(&format!("${number}")), "${number}");
        }
        assert!(!PREDICATE.contains(&format!("${}", count + 1)));
        assert!(with_filter("WHERE {{filter}} LIMIT $11").contains("m.v))\n LIMIT"));
    }
}
