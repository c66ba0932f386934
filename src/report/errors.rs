//! The errors report: the error lines of a window (a server error, or logged at error
//! level or above, as the rollups count errors) grouped by their message's signature
//! (`analytics::signature`), each with its count, first and last time, services and a
//! request id to follow with `logctl trace`; against a previous period, its count there,
//! the change and whether it is new. Error lines are few, so they are read from the raw
//! rows, with the BRIN index narrowing the window.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio_postgres::Client;
use uuid::Uuid;

use super::filter::{RawFilter, with_filter};
use super::scope::{Metric, Scope, compared_cells, compared_columns};
use super::{Cell, Table, column_names};
use crate::analytics::signature::signature;

static ERRORS_SQL: LazyLock<String> =
    LazyLock::new(|| with_filter(include_str!("../../sql/errors.sql")));

/// The signature of a line without a message.
const NO_MESSAGE: &str = "(no message)";

/// What to report on.
#[derive(Debug, Clone)]
pub struct ErrorsQuery {
    /// The window, the period to compare with (when there is one), the filters.
    pub scope: Scope,
    pub filter: RawFilter,
    /// Only the signatures the previous period does not have.
    pub only_new: bool,
    /// How many signatures to list, the most frequent first; None for all.
    pub limit: Option<usize>,
}

/// The report's data.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorsReport {
    pub scope: Scope,
    /// Error lines in the window, whatever their signature.
    pub error_lines: u64,
    /// Signatures in the window, before `only_new` and the limit.
    pub signatures_found: usize,
    pub only_new: bool,
    /// The most frequent first.
    pub signatures: Vec<ErrorSignature>,
}

/// One signature's lines in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSignature {
    pub signature: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The services that logged it, by name.
    pub services: Vec<String>,
    /// The request id of its latest line that has one.
    pub sample_request_id: Option<String>,
    /// Its lines in the period compared with; None without one.
    pub previous_count: Option<u64>,
    /// Whether the period compared with has none of it; None without one.
    pub new: Option<bool>,
}

/// One signature's lines, as they are read.
struct Group {
    count: u64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    service_ids: Vec<i32>,
    sample: Option<(DateTime<Utc>, Uuid)>,
}

impl Group {
    fn new(at: DateTime<Utc>) -> Group {
        Group {
            count: 0,
            first_seen: at,
            last_seen: at,
            service_ids: Vec::new(),
            sample: None,
        }
    }

    fn add(&mut self, at: DateTime<Utc>, service_id: i32, request_id: Option<Uuid>) {
        self.count += 1;
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        if let Err(position) = self.service_ids.binary_search(&service_id) {
            self.service_ids.insert(position, service_id);
        }
        if let Some(id) = request_id
            && self.sample.is_none_or(|(sampled_at, _)| at > sampled_at)
        {
            self.sample = Some((at, id));
        }
    }
}

/// Reads the error lines the filter keeps and groups them by signature.
async fn groups(client: &Client, filter: &RawFilter) -> crate::Result<FxHashMap<String, Group>> {
    // A scan of a day of rows is where PostgreSQL's JIT compiles for longest (1.6 s of
    // 4 s on 10 M rows) and saves least; the caller's transaction ends the setting.
    client.batch_execute("SET LOCAL jit = off").await?;
    let rows = client
        .query_raw(ERRORS_SQL.as_str(), filter.parameters())
        .await?;
    futures_util::pin_mut!(rows);
    let mut groups: FxHashMap<String, Group> = FxHashMap::default();
    // Most error lines repeat a message word for word, so each distinct message's
    // signature is worked out once.
    let mut signatures: FxHashMap<String, String> = FxHashMap::default();
    while let Some(row) = rows.try_next().await? {
        let at: DateTime<Utc> = row.get(0);
        let message: &str = row.get::<_, Option<&str>>(2).unwrap_or_default();
        let key = match signatures.get(message) {
            Some(key) => key,
            None => {
                let key = match signature(message) {
                    key if key.is_empty() => NO_MESSAGE.to_string(),
                    key => key,
                };
                signatures.entry(message.to_string()).or_insert(key)
            }
        };
        let group = match groups.get_mut(key.as_str()) {
            Some(group) => group,
            None => groups.entry(key.clone()).or_insert_with(|| Group::new(at)),
        };
        group.add(at, row.get(1), row.get(3));
    }
    Ok(groups)
}

/// The report: the window's signatures, and their counts in the previous period when
/// the scope has one.
pub async fn report(client: &Client, query: &ErrorsQuery) -> crate::Result<ErrorsReport> {
    let current = groups(client, &query.filter).await?;
    let previous: Option<FxHashMap<String, u64>> = match query.scope.previous {
        Some((from, until)) => Some(
            groups(client, &query.filter.over(from, until))
                .await?
                .into_iter()
                .map(|(key, group)| (key, group.count))
                .collect(),
        ),
        None => None,
    };
    let names: FxHashMap<i32, String> = client
        .query("SELECT service_id, service_name FROM services", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let error_lines = current.values().map(|group| group.count).sum();
    let signatures_found = current.len();
    let mut signatures: Vec<ErrorSignature> = current
        .into_iter()
        .map(|(key, group)| {
            let previous_count = previous
                .as_ref()
                .map(|counts| counts.get(&key).copied().unwrap_or(0));
            ErrorSignature {
                services: group
                    .service_ids
                    .iter()
                    .map(|id| names.get(id).cloned().unwrap_or_else(|| format!("#{id}")))
                    .collect(),
                signature: key,
                count: group.count,
                first_seen: group.first_seen,
                last_seen: group.last_seen,
                sample_request_id: group.sample.map(|(_, id)| id.to_string()),
                previous_count,
                new: previous_count.map(|count| count == 0),
            }
        })
        .filter(|found| !query.only_new || found.new == Some(true))
        .collect();
    signatures.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.signature.cmp(&b.signature))
    });
    if let Some(limit) = query.limit {
        signatures.truncate(limit);
    }
    Ok(ErrorsReport {
        scope: query.scope.clone(),
        error_lines,
        signatures_found,
        only_new: query.only_new,
        signatures,
    })
}

impl ErrorsReport {
    /// Why the list is empty, when the window's error lines do not say it.
    pub fn nothing_new(&self) -> Option<String> {
        (self.signatures.is_empty() && self.error_lines > 0).then(|| {
            format!(
                "All {} error signatures of the window were seen in the period before it too.",
                self.signatures_found
            )
        })
    }

    pub fn table(&self) -> Table {
        let compared = self.scope.previous.is_some();
        let what = if self.only_new {
            "New error signatures (none in the period before)"
        } else {
            "Error signatures"
        };
        let shown = if self.signatures.len() < self.signatures_found {
            format!("{} of {}", self.signatures.len(), self.signatures_found)
        } else {
            self.signatures.len().to_string()
        };
        let mut columns = column_names(&["signature"]);
        columns.extend(compared_columns("count", compared));
        columns.extend(column_names(&[
            "first_seen",
            "last_seen",
            "services",
            "request_id",
        ]));
        if compared {
            columns.extend(column_names(&["new"]));
        }
        Table {
            name: "errors",
            title: self.scope.heading(&format!(
                "{what}: {shown}, of {} error lines (status >= 500 or level error and above), \
                 times in UTC",
                self.error_lines
            )),
            columns,
            rows: self
                .signatures
                .iter()
                .map(|found| {
                    let mut row = vec![Cell::Text(found.signature.clone())];
                    row.extend(compared_cells(
                        Metric::Count,
                        Some(found.count as f64),
                        found.previous_count.map(|count| Some(count as f64)),
                    ));
                    row.extend([
                        Cell::Time(found.first_seen),
                        Cell::Time(found.last_seen),
                        Cell::Text(found.services.join(", ")),
                        found.sample_request_id.clone().map_or(Cell::Null, Cell::Id),
                    ]);
                    row.extend(found.new.map(Cell::Bool));
                    row
                })
                .collect(),
        }
    }
}
