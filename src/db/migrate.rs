//! Versioned, idempotent schema migrations from the numbered files in `sql/`, in one
//! of three variants: a plain table, a table partitioned by time, or a Citus
//! distributed table (optionally partitioned too).

use std::fmt;

use tokio_postgres::{Client, IsolationLevel};

use super::locks;
use super::partitions::Interval;
use crate::Error;

/// One numbered SQL file, applied once and recorded in `logctl_schema_version`.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_events.sql",
        sql: include_str!("../../sql/001_events.sql"),
    },
    Migration {
        version: 2,
        name: "002_ledger.sql",
        sql: include_str!("../../sql/002_ledger.sql"),
    },
    Migration {
        version: 3,
        name: "003_partitions.sql",
        sql: include_str!("../../sql/003_partitions.sql"),
    },
    Migration {
        version: 4,
        name: "004_partition_bounds.sql",
        sql: include_str!("../../sql/004_partition_bounds.sql"),
    },
    Migration {
        version: 5,
        name: "005_claims_and_roles.sql",
        sql: include_str!("../../sql/005_claims_and_roles.sql"),
    },
    Migration {
        version: 6,
        name: "006_rollups.sql",
        sql: concat!(
            include_str!("../../sql/006_rollups.sql"),
            include_str!("../../sql/sketch_quantile.sql")
        ),
    },
    Migration {
        version: 7,
        name: "007_rollup_grains.sql",
        sql: include_str!("../../sql/007_rollup_grains.sql"),
    },
    Migration {
        version: 8,
        name: "008_error_lines.sql",
        sql: include_str!("../../sql/008_error_lines.sql"),
    },
    Migration {
        version: 9,
        name: "009_spread.sql",
        sql: include_str!("../../sql/009_spread.sql"),
    },
    Migration {
        version: 10,
        name: "010_rollup_totals.sql",
        sql: include_str!("../../sql/010_rollup_totals.sql"),
    },
    Migration {
        version: 11,
        name: "011_rollup_detail.sql",
        sql: include_str!("../../sql/011_rollup_detail.sql"),
    },
    Migration {
        version: 12,
        name: "012_delta_compression.sql",
        sql: include_str!("../../sql/012_delta_compression.sql"),
    },
];

const DISTRIBUTE: &str = include_str!("../../sql/distribute.sql");

const VERSION_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS logctl_schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);";

/// The shape of the schema, fixed when it is first created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Variant {
    pub partition: Option<Interval>,
    pub distributed: bool,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.partition, self.distributed) {
            (None, false) => write!(f, "a plain table"),
            (Some(interval), false) => write!(f, "a table partitioned by {}", interval.name()),
            (None, true) => write!(f, "a Citus distributed table"),
            (Some(interval), true) => write!(
                f,
                "a Citus distributed table partitioned by {}",
                interval.name()
            ),
        }
    }
}

impl Variant {
    /// A migration's SQL for this variant.
    fn render(&self, migration: &Migration) -> String {
        let mut key = vec!["event_id"];
        if self.distributed {
            key.push("service_id");
        }
        if self.partition.is_some() {
            key.push("created_at");
        }
        let mut sql = migration
            .sql
            .replace("{{partition}}", self.partition.map_or("", Interval::name))
            .replace(
                "{{distributed}}",
                if self.distributed { "true" } else { "false" },
            )
            .replace("{{primary_key}}", &key.join(", "))
            .replace(
                "{{partitioning}}",
                if self.partition.is_some() {
                    " PARTITION BY RANGE (created_at)"
                } else {
                    ""
                },
            );
        for (placeholder, class) in locks::SQL_PLACEHOLDERS {
            sql = sql.replace(placeholder, &class.to_string());
        }
        if migration.version == 1 && self.distributed {
            format!("{sql}\n{DISTRIBUTE}")
        } else {
            sql
        }
    }

    /// The variant a database holds; None when logctl never created one there.
    pub async fn of_database(
        client: &impl tokio_postgres::GenericClient,
    ) -> crate::Result<Option<Variant>> {
        let exists: bool = client
            .query_one("SELECT to_regclass('logctl_settings') IS NOT NULL", &[])
            .await?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let rows = client
            .query("SELECT key, value FROM logctl_settings", &[])
            .await?;
        let mut variant = Variant::default();
        for row in rows {
            match (row.get::<_, &str>(0), row.get::<_, &str>(1)) {
                ("partition", value) => variant.partition = Interval::from_name(value),
                ("distributed", value) => variant.distributed = value == "true",
                _ => {}
            }
        }
        Ok(Some(variant))
    }
}

/// What a run of the migrations did.
#[derive(Debug)]
pub struct Applied {
    pub newly_applied: Vec<&'static str>,
    pub version: i32,
    pub variant: Variant,
}

/// The SQL that `apply` would run on an empty database, for `--print`.
pub fn script(variant: Variant) -> String {
    let mut text = format!("-- logctl schema: {variant}\n{VERSION_TABLE}\n");
    for migration in MIGRATIONS {
        text.push_str(&format!(
            "\n-- {}\n{}",
            migration.name,
            variant.render(migration)
        ));
        text.push_str(&format!(
            "INSERT INTO logctl_schema_version (version, name) VALUES ({}, '{}');\n",
            migration.version, migration.name
        ));
    }
    text
}

/// Applies the migrations the database has not seen, all in one transaction. `wanted`
/// is the variant asked for (None: whatever the database holds, plain when new); a
/// database created as another variant is left alone with an error.
pub async fn apply(client: &mut Client, wanted: Option<Variant>) -> crate::Result<Applied> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::MIGRATION])
        .await?;
    transaction.batch_execute(VERSION_TABLE).await?;
    let applied: Vec<i32> = transaction
        .query(
            "SELECT version FROM logctl_schema_version ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&newest) = applied.last()
        && newest > newest_known
    {
        return Err(Error::Failed(format!(
            "the database's logctl schema is at version {newest}, newer than this logctl knows \
             ({newest_known}); upgrade logctl"
        )));
    }
    let existing = Variant::of_database(&transaction).await?;
    let variant = match (existing, wanted) {
        (Some(existing), Some(wanted)) if existing != wanted => {
            return Err(Error::Failed(format!(
                "this database holds {existing}; logctl does not convert it to {wanted} \
                 (create the other variant in a new database and load the logs there)"
            )));
        }
        (Some(existing), _) => existing,
        (None, wanted) => wanted.unwrap_or_default(),
    };
    if variant.distributed && existing.is_none() {
        let citus: bool = transaction
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
                &[],
            )
            .await?
            .get(0);
        if !citus {
            return Err(Error::Failed(
                "--distributed needs the Citus extension, which this database does not have: \
                 run `CREATE EXTENSION citus` on the coordinator (as a superuser, with citus in \
                 shared_preload_libraries) and add the workers, or leave out --distributed"
                    .into(),
            ));
        }
    }
    if variant.distributed {
        // Citus moves a table with a foreign key to a reference table (log_events ->
        // services, 009) over one connection per worker, and refuses to once anything in
        // the transaction ran over several: so all of it runs that way.
        transaction
            .batch_execute("SET LOCAL citus.multi_shard_modify_mode TO sequential")
            .await?;
    }
    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = variant.render(migration);
        // One statement per query: Citus sends some DDL (ALTER TABLE, CREATE INDEX) to
        // the workers as the text of the query it came in, and a worker refuses a text
        // of several commands.
        for statement in statements(&sql) {
            transaction
                .batch_execute(statement)
                .await
                .map_err(|e| Error::from(e).context(format!("{} failed", migration.name)))?;
        }
        transaction
            .execute(
                "INSERT INTO logctl_schema_version (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await?;
        newly_applied.push(migration.name);
    }
    transaction.commit().await?;
    Ok(Applied {
        newly_applied,
        version: newest_known,
        variant,
    })
}

/// The opt-in request-id index's SQL (see the file).
pub const TRACE_INDEX: &str = include_str!("../../sql/trace_index.sql");

/// Creates (`on`) or drops the opt-in request-id index; true when that changed anything.
pub async fn set_trace_index(client: &Client, on: bool) -> crate::Result<bool> {
    let had = has_trace_index(client).await?;
    if on && !had {
        client.batch_execute(TRACE_INDEX).await?;
    } else if !on && had {
        client
            .batch_execute("DROP INDEX log_events_request_id_idx")
            .await?;
    }
    Ok(on != had)
}

/// Whether log_events has the opt-in request-id index.
pub async fn has_trace_index(client: &Client) -> crate::Result<bool> {
    Ok(client
        .query_one(
            "SELECT to_regclass('log_events_request_id_idx') IS NOT NULL",
            &[],
        )
        .await?
        .get(0))
}

/// The schema version the database is at, or None when logctl never ran there.
pub async fn current_version(client: &Client) -> crate::Result<Option<i32>> {
    let exists = client
        .query_one(
            "SELECT to_regclass('logctl_schema_version') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    Ok(client
        .query_one("SELECT max(version) FROM logctl_schema_version", &[])
        .await?
        .get(0))
}

/// The statements of a migration, each with its `;`: split at semicolons outside
/// comments, quoted strings, quoted names and dollar-quoted bodies (`$$ ... $$`,
/// `$function$ ... $function$`).
fn statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let (mut start, mut at) = (0, 0);
    while at < bytes.len() {
        let rest = &bytes[at..];
        let skip_to = |end: &[u8], from: usize| {
            bytes[from..]
                .windows(end.len())
                .position(|window| window == end)
                .map_or(bytes.len(), |found| from + found + end.len())
        };
        at = match rest[0] {
            b'-' if rest.starts_with(b"--") => skip_to(b"\n", at + 2),
            b'/' if rest.starts_with(b"/*") => skip_to(b"*/", at + 2),
            b'$' => match dollar_tag(rest) {
                Some(tag) => skip_to(tag, at + tag.len()),
                None => at + 1,
            },
            b'\'' => skip_to(b"'", at + 1),
            b'"' => skip_to(b"\"", at + 1),
            b';' => {
                statements.push(&sql[start..=at]);
                start = at + 1;
                at + 1
            }
            _ => at + 1,
        };
    }
    if !sql[start..].trim().is_empty() {
        statements.push(&sql[start..]);
    }
    statements
}

/// The dollar-quote tag `text` starts with (`$$`, `$body$`), if it starts with one.
fn dollar_tag(text: &[u8]) -> Option<&[u8]> {
    let length = text[1..]
        .iter()
        .position(|&byte| !(byte.is_ascii_alphanumeric() || byte == b'_'))?;
    (text[1 + length] == b'$' && !text.get(1).is_some_and(u8::is_ascii_digit))
        .then(|| &text[..length + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements_at_semicolons_outside_quotes_and_bodies() {
        let sql = "CREATE TABLE a (b text DEFAULT 'x;y'); -- c; d\n\
                   DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\n\
                   CREATE FUNCTION i() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   /* e; */ SELECT \"f;g\" FROM h;\n   ";
        assert_eq!(
            statements(sql),
            [
                "CREATE TABLE a (b text DEFAULT 'x;y');",
                " -- c; d\nDO $$ BEGIN PERFORM 1; PERFORM 2; END $$;",
                "\nCREATE FUNCTION i() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;",
                "\n/* e; */ SELECT \"f;g\" FROM h;",
            ]
        );
        for migration in MIGRATIONS {
            let sql = Variant::default().render(migration);
            let parts = statements(&sql);
            assert_eq!(
                parts.concat().trim_end(),
                sql.trim_end(),
                "{}",
                migration.name
            );
            // Every function body is whole inside one statement.
            for part in parts {
                for tag in ["$$", "$function$"] {
                    assert_eq!(
                        part.matches(tag).count() % 2,
                        0,
                        "{}: {part}",
                        migration.name
                    );
                }
            }
        }
    }

    #[test]
    fn each_variant_renders_its_table() {
        let plain = script(Variant::default());
        assert!(plain.contains("PRIMARY KEY (event_id)\n);"));
        assert!(!plain.contains("{{"));
        let partitioned = script(Variant {
            partition: Some(Interval::Week),
            distributed: false,
        });
        assert!(
            partitioned
                .contains("PRIMARY KEY (event_id, created_at)\n) PARTITION BY RANGE (created_at);")
        );
        assert!(partitioned.contains("('partition', 'week')"));
        let distributed = script(Variant {
            partition: None,
            distributed: true,
        });
        assert!(distributed.contains("PRIMARY KEY (event_id, service_id)"));
        assert!(distributed.contains("create_distributed_table('log_events', 'service_id')"));
        assert!(distributed.contains("create_reference_table('services')"));
        assert!(distributed.contains("IF 'true' = 'true' THEN\n        -- Rows loaded before"));
        assert!(plain.contains("IF 'false' = 'true' THEN\n        -- Rows loaded before"));
        let both = script(Variant {
            partition: Some(Interval::Day),
            distributed: true,
        });
        assert!(both.contains("PRIMARY KEY (event_id, service_id, created_at)"));
    }
}
