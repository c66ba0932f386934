//! The ledger report: each source loaded, how far, and when.

use tokio_postgres::Client;

use super::{Cell, Table, column_names};

const STATUS_SQL: &str = include_str!("../../sql/ledger_status.sql");

pub async fn report(client: &Client) -> crate::Result<Table> {
    let rows = client.query(STATUS_SQL, &[]).await?;
    Ok(Table {
        name: "sources",
        title: format!("Loaded sources ({})", rows.len()),
        columns: column_names(&[
            "source",
            "lines",
            "bytes",
            "loaded",
            "rejected",
            "complete",
            "last_loaded_at",
        ]),
        rows: rows
            .iter()
            .map(|row| {
                vec![
                    Cell::Text(row.get(0)),
                    Cell::Int(row.get(1)),
                    Cell::Int(row.get(2)),
                    Cell::Int(row.get(3)),
                    Cell::Int(row.get(4)),
                    Cell::Bool(row.get(5)),
                    row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(6)
                        .map_or(Cell::Null, Cell::Time),
                ]
            })
            .collect(),
    })
}
