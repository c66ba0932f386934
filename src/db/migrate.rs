//! Versioned, idempotent schema migrations from the numbered files in `sql/`.

use tokio_postgres::Client;

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
];

const VERSION_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS logctl_schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);";

/// Serialises concurrent `logctl schema` runs (the key spells "logctl" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c6f_6763_746c;

/// What a run of the migrations did.
#[derive(Debug)]
pub struct Applied {
    pub newly_applied: Vec<&'static str>,
    pub version: i32,
}

/// The SQL that `apply` would run on an empty database, for `--print`.
pub fn script() -> String {
    let mut text = format!("{VERSION_TABLE}\n");
    for migration in MIGRATIONS {
        text.push_str(&format!("\n-- {}\n{}", migration.name, migration.sql));
        text.push_str(&format!(
            "INSERT INTO logctl_schema_version (version, name) VALUES ({}, '{}');\n",
            migration.version, migration.name
        ));
    }
    text
}

/// Applies the migrations the database has not seen, all in one transaction.
pub async fn apply(client: &mut Client) -> anyhow::Result<Applied> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
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
        anyhow::bail!(
            "the database's logctl schema is at version {newest}, newer than this logctl knows \
                 ({newest_known}); upgrade logctl"
        );
    }
    let mut newly_applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(|e| anyhow::anyhow!("{} failed: {}", migration.name, super::error_text(&e)))?;
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
    })
}

/// The schema version the database is at, or None when logctl never ran there.
pub async fn current_version(client: &Client) -> anyhow::Result<Option<i32>> {
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
