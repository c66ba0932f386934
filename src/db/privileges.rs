//! The privileges a role needs to load or to read reports, as data: printed as GRANT
//! statements by `logctl schema --print-grants`, and checked when a load starts, so
//! that a role lacking one hears which before anything is read. Everything else a
//! loader does runs as the owner, in functions `logctl schema` creates (compacting the
//! ledger, creating partitions); dropping and building indexes is the owner's alone,
//! and a loader that is not the owner keeps them.

use tokio_postgres::Client;

/// What a role is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `logctl load`, and the reports.
    Loader,
    /// `logctl slow`, `logctl status`: reads only.
    Reader,
}

/// Privileges on one table.
struct TableGrant {
    table: &'static str,
    privileges: &'static [&'static str],
}

const READER: &[TableGrant] = &[
    TableGrant {
        table: "log_events",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "services",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_sources",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_ranges",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_settings",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_schema_version",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_deltas",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_service_hour",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_service_day",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_route_hour",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_route_day",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_total_minute",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_route_hour_detail",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_route_day_detail",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_total_minute_detail",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_total_hour",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_rollup_total_day",
        privileges: &["SELECT"],
    },
];

/// A loader adds rows and ledger entries; it never deletes or changes what is loaded.
const LOADER: &[TableGrant] = &[
    TableGrant {
        table: "log_events",
        privileges: &["SELECT", "INSERT"],
    },
    TableGrant {
        table: "services",
        privileges: &["SELECT", "INSERT"],
    },
    TableGrant {
        table: "logctl_sources",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_ranges",
        privileges: &["SELECT", "INSERT"],
    },
    // Claims are taken, taken over from a load that died, and released.
    TableGrant {
        table: "logctl_claims",
        privileges: &["SELECT", "INSERT", "UPDATE", "DELETE"],
    },
    TableGrant {
        table: "logctl_settings",
        privileges: &["SELECT"],
    },
    TableGrant {
        table: "logctl_schema_version",
        privileges: &["SELECT"],
    },
    // A batch appends its rollup cells as deltas; compacting them into the grains (at
    // the end of a load, or `logctl rollup compact`) consumes the deltas and merges
    // their cells into the grains' rows.
    TableGrant {
        table: "logctl_rollup_deltas",
        privileges: &["SELECT", "INSERT", "DELETE"],
    },
    TableGrant {
        table: "logctl_rollup_service_hour",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_service_day",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_route_hour",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_route_day",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_total_minute",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_route_hour_detail",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_route_day_detail",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_total_minute_detail",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_total_hour",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
    TableGrant {
        table: "logctl_rollup_total_day",
        privileges: &["SELECT", "INSERT", "UPDATE"],
    },
];

impl Role {
    fn grants(self) -> &'static [TableGrant] {
        match self {
            Role::Loader => LOADER,
            Role::Reader => READER,
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Role::Loader => "load logs with logctl (and read its reports)",
            Role::Reader => "read logctl's reports (slow, status)",
        }
    }
}

/// The statements that give `role_name` what `role` needs, for the owner of the logctl
/// tables to run where `logctl schema` ran (the same database and search_path: the
/// tables are named as the schema script names them).
pub fn grant_statements(role_name: &str, role: Role) -> String {
    let grantee = quote_identifier(role_name);
    let literal = role_name.replace('\'', "''");
    let mut sql = format!(
        "-- Lets {grantee} {}.\n\
         -- Run as the owner of the logctl tables, in their database, with the search_path\n\
         -- `logctl schema` ran with. The functions keep PostgreSQL's default EXECUTE for PUBLIC.\n\
         DO $grant$ BEGIN\n    \
         EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), '{literal}');\n\
         END $grant$;\n",
        role.purpose()
    );
    for grant in role.grants() {
        sql.push_str(&format!(
            "GRANT {} ON {} TO {grantee};\n",
            grant.privileges.join(", "),
            grant.table
        ));
    }
    sql
}

/// The privileges `role` needs that the current user lacks, as "INSERT on log_events",
/// in the caller's transaction.
pub async fn missing(client: &Client, role: Role) -> crate::Result<Vec<String>> {
    let (tables, privileges): (Vec<&str>, Vec<&str>) = role
        .grants()
        .iter()
        .flat_map(|grant| grant.privileges.iter().map(|p| (grant.table, *p)))
        .unzip();
    let rows = client
        .query(
            "SELECT format('%s on %s', p, t) FROM unnest($1::text[], $2::text[]) AS g(t, p) \
             WHERE NOT has_table_privilege(t, p)",
            &[&tables, &privileges],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A role name as an SQL identifier, always quoted so that any name reads back as written.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_gets_only_select_and_a_loader_never_deletes_what_is_loaded() {
        let reader = grant_statements("reports", Role::Reader);
        assert!(reader.contains("GRANT SELECT ON log_events TO \"reports\";"));
        assert!(!reader.contains("INSERT"));
        let loader = grant_statements("it's \"odd\"", Role::Loader);
        assert!(loader.contains("GRANT SELECT, INSERT ON log_events TO \"it's \"\"odd\"\"\";"));
        assert!(loader.contains("'it''s \"odd\"'"));
        for table in ["log_events", "services", "logctl_sources", "logctl_ranges"] {
            let line = loader
                .lines()
                .find(|line| line.contains(&format!(" ON {table} TO ")))
                .unwrap();
            assert!(
                !line.contains("DELETE") && !line.contains("TRUNCATE"),
                "{line}"
            );
        }
    }
}
