//! The load options a config file (`logctl load --config logctl.toml`) may set as well
//! as the flags: one type both fill, merged once (the flags over the file), then turned
//! into the pipeline's `LoadPlan`, with the defaults for what neither set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::Error;
use crate::analytics::routes::{DEFAULT_ROUTE_LIMIT, RouteRule};
use crate::cmd::args::{Size, parse_zone};
use crate::ingest::encode::{Mapping, NulPolicy, ParseOptions, Routes, ShapeChoice};
use crate::ingest::{Expansion, IndexStrategy, LoadPlan, RejectSink};

/// The longest line accepted at all: jsonb cannot hold a document much larger.
const LINE_LIMIT_CEILING: usize = 256 * 1024 * 1024;
const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
const DEFAULT_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Unset options are None (or empty, or false). Unknown keys in the file are an error,
/// so a typo does not silently load with the wrong options.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    // The fields keep the order of the file's keys, which its errors list; display_order
    // keeps the flags where `logctl load --help` has always shown them, among the others.
    /// Read every line with this shape instead of detecting each line's own:
    /// generic, ecs, pino (also bunyan), zap, slog, nginx, docker
    #[arg(long, value_name = "NAME", display_order = 12)]
    pub shape: Option<String>,

    /// Zone for timestamps without an offset: an IANA name (Europe/Berlin) or +HH:MM [default: UTC]
    #[arg(long, value_name = "ZONE", display_order = 10)]
    pub timezone: Option<String>,

    /// The service of lines that name none
    #[arg(long, value_name = "NAME", display_order = 14)]
    pub default_service: Option<String>,

    /// Append rejected lines to PATH as NDJSON (file, line, offset, reason, text) instead of stderr
    #[arg(long, value_name = "PATH", display_order = 1)]
    pub rejects: Option<PathBuf>,

    /// Stop once more than N lines were rejected (committed batches stay; exit code 5)
    #[arg(long, value_name = "N", display_order = 2)]
    pub max_errors: Option<u64>,

    /// Lines longer than this are rejected without being read into memory [default: 1MiB]
    #[arg(long, value_name = "SIZE", display_order = 9)]
    pub max_line_bytes: Option<Size>,

    /// Target size of one COPY batch (one transaction), e.g. 4MiB [default: 2MiB]
    #[arg(long, value_name = "SIZE", display_order = 8)]
    pub batch_bytes: Option<Size>,

    /// Concurrent COPY streams [default: the number of CPUs, at least 2]
    #[arg(long, value_name = "N", display_order = 7)]
    pub jobs: Option<usize>,

    /// Drop U+0000 characters instead of rejecting the lines that hold them
    #[arg(long, display_order = 11)]
    pub strip_nul: bool,

    /// How indexes are kept up during the load. auto: into an empty table, drop the
    /// indexes and keys, load in one transaction, and build them again at the end (much
    /// less work for the server; one COPY stream; a failure or kill rolls back the whole
    /// load, indexes included); into a table with rows, keep. On a partitioned table, the
    /// same per partition: new partitions are filled in one transaction and get their
    /// indexes after their rows, existing ones keep theirs (all keep them when there are
    /// row triggers). A distributed table always keeps, and so does a load with stdin or
    /// a pipe among its inputs (what they gave cannot be read again after a rollback) or
    /// by a role that does not own log_events. keep: maintain them row by row, with
    /// --jobs concurrent COPY streams each committing its batches. rebuild: the
    /// one-transaction rebuild even when the plain table has rows (locked meanwhile)
    #[arg(long, value_enum, value_name = "STRATEGY", display_order = 15)]
    pub index_strategy: Option<IndexStrategy>,

    /// Take a column from a dotted path, with a unit for latency_ms (ns, us, ms, s);
    /// repeatable, e.g. --map created_at=event.created --map latency_ms=timings.total:s
    #[arg(long = "map", value_name = "COLUMN=PATH[:UNIT]", display_order = 13)]
    #[serde(rename = "map", deserialize_with = "mappings_from_table")]
    pub mappings: Vec<String>,

    /// A route template tried before the default templating of endpoints, first match
    /// winning: literal segments, `:name` for any one segment, `*` for one kept as it is,
    /// and a last `**` for the rest; repeatable, e.g. --route-rule '/rest/api/*/issue/:key'
    #[arg(long = "route-rule", value_name = "TEMPLATE", display_order = 17)]
    #[serde(rename = "route_rules")]
    pub route_rules: Vec<String>,

    /// Distinct routes kept per service; the rest count as `(other)` [default: 200]
    #[arg(long, value_name = "N", display_order = 18)]
    pub route_limit: Option<usize>,

    /// In directories, load the files whose names match GLOB (repeatable) instead of
    /// those with a log name: *.ndjson, *.jsonl, *.json, *.log, also compressed (.gz,
    /// .zst) or rotated (.1, -20261124). Files named on the command line and matched by
    /// a glob argument are always loaded
    #[arg(long, value_name = "GLOB", display_order = 0)]
    pub include: Vec<String>,
}

/// The file's `[map]` table (column = "path[:unit]") in the form `--map` takes.
fn mappings_from_table<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(deserializer)?;
    Ok(table
        .into_iter()
        .map(|(column, path)| format!("{column}={path}"))
        .collect())
}

impl LoadOptions {
    pub fn read(path: &Path) -> Result<LoadOptions, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        toml::from_str(&text)
            .map_err(|e| Error::usage(format!("config file {}: {e}", path.display())))
    }

    /// These options, from the flags, over the file's: a flag wins, the file's mappings
    /// come before the flags', and `--strip-nul`, which can only be given, leaves the
    /// file's value when it is not.
    pub fn over(self, file: LoadOptions) -> LoadOptions {
        LoadOptions {
            shape: self.shape.or(file.shape),
            timezone: self.timezone.or(file.timezone),
            default_service: self.default_service.or(file.default_service),
            rejects: self.rejects.or(file.rejects),
            max_errors: self.max_errors.or(file.max_errors),
            max_line_bytes: self.max_line_bytes.or(file.max_line_bytes),
            batch_bytes: self.batch_bytes.or(file.batch_bytes),
            jobs: self.jobs.or(file.jobs),
            strip_nul: self.strip_nul || file.strip_nul,
            index_strategy: self.index_strategy.or(file.index_strategy),
            mappings: file.mappings.into_iter().chain(self.mappings).collect(),
            route_rules: self
                .route_rules
                .into_iter()
                .chain(file.route_rules)
                .collect(),
            route_limit: self.route_limit.or(file.route_limit),
            include: if self.include.is_empty() {
                file.include
            } else {
                self.include
            },
        }
    }

    /// The plan for loading the expanded inputs with these (merged) options, the
    /// defaults standing in for what neither the flags nor the file set.
    pub fn plan(
        &self,
        inputs: Expansion,
        stdin_name: String,
        dry_run: bool,
        progress: bool,
    ) -> Result<LoadPlan, Error> {
        let max_line_bytes = self
            .max_line_bytes
            .map_or(DEFAULT_MAX_LINE_BYTES, Size::bytes);
        if max_line_bytes > LINE_LIMIT_CEILING {
            return Err(Error::usage(format!(
                "--max-line-bytes can be at most {LINE_LIMIT_CEILING} (PostgreSQL's jsonb limit)"
            )));
        }
        let zone = parse_zone(self.timezone.as_deref())?;
        let mappings = self
            .mappings
            .iter()
            .map(|text| {
                text.parse::<Mapping>()
                    .map_err(|e| Error::usage(format!("--map {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shape = ShapeChoice::new(
            self.shape.as_deref(),
            &mappings,
            self.default_service.as_deref(),
        )
        .map_err(|error| Error::usage(format!("--shape: {error}")))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let plan = LoadPlan {
            inputs: inputs.inputs,
            unreadable_inputs: inputs.unreadable,
            stdin_name,
            parse: ParseOptions {
                shape,
                zone,
                nul: if self.strip_nul {
                    NulPolicy::Strip
                } else {
                    NulPolicy::Reject
                },
                max_line_bytes,
                routes: self.routes()?,
            },
            jobs: self.jobs.unwrap_or(cores.max(2)).max(1),
            parse_threads: cores.max(1),
            chunk_bytes: self.batch_bytes.map_or(DEFAULT_BATCH_BYTES, Size::bytes),
            max_errors: self.max_errors,
            dry_run,
            progress,
            index_strategy: self.index_strategy.unwrap_or(IndexStrategy::Auto),
        };
        if plan.index_strategy == IndexStrategy::Rebuild && !plan.inputs_can_be_read_again() {
            return Err(Error::usage(
                "--index-strategy rebuild loads everything in one transaction, and a failure \
                 would lose what was read from stdin or a pipe, which cannot be read again: \
                 leave it out (such a load keeps the indexes), or load from a file",
            ));
        }
        Ok(plan)
    }

    /// The route rules, the flags' before the file's, and the cap on routes per service.
    fn routes(&self) -> Result<Routes, Error> {
        let rules = self
            .route_rules
            .iter()
            .map(|rule| rule.parse::<RouteRule>())
            .collect::<Result<Vec<_>, _>>()?;
        let limit = self.route_limit.unwrap_or(DEFAULT_ROUTE_LIMIT);
        if limit == 0 {
            return Err(Error::usage(
                "--route-limit must be at least 1 (routes over it count as `(other)`)",
            ));
        }
        Ok(Routes::new(rules, limit))
    }

    /// Where rejected lines go: the reject file, opened for appending, else stderr.
    pub fn reject_sink(&self) -> Result<RejectSink, Error> {
        match &self.rejects {
            Some(path) => RejectSink::file(path).map_err(|e| {
                Error::usage(format!(
                    "cannot open the reject file {}: {e}",
                    path.display()
                ))
            }),
            None => Ok(RejectSink::Stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_mappings_and_refuses_unknown_keys() {
        let options: LoadOptions = toml::from_str(
            "shape = \"ecs\"\ntimezone = \"Europe/Berlin\"\n[map]\nlatency_ms = \"timings.total:s\"\n",
        )
        .unwrap();
        assert_eq!(options.shape.as_deref(), Some("ecs"));
        assert_eq!(options.mappings, ["latency_ms=timings.total:s"]);
        assert!(toml::from_str::<LoadOptions>("shapes = \"ecs\"\n").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_its_mappings_come_first() {
        let file: LoadOptions = toml::from_str(
            "shape = \"ecs\"\njobs = 3\nbatch_bytes = \"4MiB\"\nstrip_nul = true\n[map]\nmessage = \"text\"\n",
        )
        .unwrap();
        let flags = LoadOptions {
            shape: Some("zap".into()),
            mappings: vec!["message=msg".into()],
            ..LoadOptions::default()
        };
        let merged = flags.over(file);
        assert_eq!(merged.shape.as_deref(), Some("zap"));
        assert_eq!(merged.jobs, Some(3));
        assert_eq!(merged.batch_bytes, Some("4MiB".parse().unwrap()));
        assert!(merged.strip_nul);
        assert_eq!(merged.mappings, ["message=text", "message=msg"]);
    }
}
