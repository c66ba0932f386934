//! Service names to `services.service_id`s, for the write stage: the names of a batch
//! are looked up in a process-wide map, and the new ones are created as one set per
//! batch, through the connection that will hold the batch (ON CONFLICT makes concurrent
//! loaders agree on one id). A name the server refuses (too long for the unique index,
//! say) refuses only the lines that carry it.

use std::sync::Mutex;

use rustc_hash::FxHashMap;
use tokio_postgres::Client;

use crate::{Error, Invalid, error_text};

/// What a name resolves to: its id, or why the server refused to store it.
pub(crate) type Resolved = Result<i32, Invalid>;

/// The names known to this load, shared by the writers.
pub(crate) struct ServiceRegistry {
    known: Mutex<FxHashMap<Box<str>, Resolved>>,
    /// The names this load added (or, in a dry run, would add).
    created: Mutex<Vec<String>>,
}

impl ServiceRegistry {
    /// Reads the existing services.
    pub async fn load(client: &Client) -> crate::Result<ServiceRegistry> {
        let rows = client
            .query("SELECT service_name, service_id FROM services", &[])
            .await?;
        let known = rows
            .iter()
            .map(|row| (row.get::<_, &str>(0).into(), Ok(row.get(1))))
            .collect();
        Ok(ServiceRegistry {
            known: Mutex::new(known),
            created: Mutex::new(Vec::new()),
        })
    }

    /// For --dry-run: nothing is known, every name gets id 0 and nothing is written.
    pub fn offline() -> ServiceRegistry {
        ServiceRegistry {
            known: Mutex::new(FxHashMap::default()),
            created: Mutex::new(Vec::new()),
        }
    }

    pub fn created(&self) -> Vec<String> {
        self.created.lock().expect("not poisoned").clone()
    }

    /// What each name resolves to, in order, creating the unknown ones through `client`
    /// (None in a dry run, where each new name counts as one that would be added).
    /// `in_transaction` says that `client` is inside a transaction that a refused name
    /// must not abort.
    pub async fn ids(
        &self,
        client: Option<&Client>,
        in_transaction: bool,
        names: &[Box<str>],
    ) -> crate::Result<Vec<Resolved>> {
        let mut unknown: Vec<&str> = {
            let known = self.known.lock().expect("not poisoned");
            names
                .iter()
                .map(|name| &**name)
                .filter(|name| !known.contains_key(*name))
                .collect()
        };
        if !unknown.is_empty() {
            // In name order, so loaders creating overlapping sets wait on each other's
            // names one way round and never deadlock.
            unknown.sort_unstable();
            match client {
                Some(client) => self.create(client, in_transaction, &unknown).await?,
                None => self.create_offline(&unknown),
            }
        }
        let known = self.known.lock().expect("not poisoned");
        Ok(names.iter().map(|name| known[&**name].clone()).collect())
    }

    fn create_offline(&self, names: &[&str]) {
        let mut known = self.known.lock().expect("not poisoned");
        let mut created = self.created.lock().expect("not poisoned");
        for name in names {
            if known.insert((*name).into(), Ok(0)).is_none() {
                created.push(name.to_string());
            }
        }
    }

    /// Creates the names as one set; when the server refuses the set for one name's
    /// sake, creates them one by one, so that only the refused ones stay unknown.
    async fn create(
        &self,
        client: &Client,
        in_transaction: bool,
        names: &[&str],
    ) -> crate::Result<()> {
        match insert(client, in_transaction, names).await {
            Err(Error::RowRefused(_)) if names.len() > 1 => {
                for name in names {
                    Box::pin(self.create(client, in_transaction, &[name])).await?;
                }
                Ok(())
            }
            Err(Error::RowRefused(error)) => {
                let reason = Invalid(format!(
                    "refused by PostgreSQL as a service name: {}",
                    error_text(&error)
                ));
                self.known
                    .lock()
                    .expect("not poisoned")
                    .insert(names[0].into(), Err(reason));
                Ok(())
            }
            Err(other) => Err(other),
            Ok(ids) => {
                let mut known = self.known.lock().expect("not poisoned");
                let mut created = self.created.lock().expect("not poisoned");
                for (name, id, new) in ids {
                    if known.insert(name.as_str().into(), Ok(id)).is_none() && new {
                        created.push(name);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Inserts the names that do not exist and reads the ids of all: (name, id, whether
/// this insert created it). Inside a transaction, a refusal rolls back to a savepoint
/// and leaves the transaction usable.
async fn insert(
    client: &Client,
    in_transaction: bool,
    names: &[&str],
) -> crate::Result<Vec<(String, i32, bool)>> {
    if in_transaction {
        client.batch_execute("SAVEPOINT logctl_services").await?;
    }
    let inserted = client
        .query(
            "INSERT INTO services (service_name) SELECT unnest($1::text[]) \
             ON CONFLICT (service_name) DO NOTHING RETURNING service_name, service_id",
            &[&names],
        )
        .await;
    let inserted = match inserted {
        Ok(rows) => rows,
        Err(error) => {
            if in_transaction {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT logctl_services")
                    .await?;
            }
            return Err(error.into());
        }
    };
    if in_transaction {
        client
            .batch_execute("RELEASE SAVEPOINT logctl_services")
            .await?;
    }
    let mut ids: Vec<(String, i32, bool)> = inserted
        .iter()
        .map(|row| (row.get(0), row.get(1), true))
        .collect();
    // Another loader's names: committed before its insert let ours go on, so a new
    // statement sees them.
    if ids.len() < names.len() {
        let existing = client
            .query(
                "SELECT service_name, service_id FROM services WHERE service_name = ANY($1)",
                &[&names],
            )
            .await?;
        for row in &existing {
            let name: String = row.get(0);
            if !ids.iter().any(|(known, ..)| *known == name) {
                ids.push((name, row.get(1), false));
            }
        }
    }
    Ok(ids)
}
