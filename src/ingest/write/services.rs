//! Service names to `services.service_id`s, for the write stage: the names of a batch
//! are looked up in a process-wide map, and the new ones are created as one set per
//! batch, through the connection that will hold the batch (ON CONFLICT makes concurrent
//! loaders agree on one id).

use std::sync::Mutex;

use rustc_hash::FxHashMap;
use tokio_postgres::Client;

/// The names known to this load, shared by the writers.
pub(crate) struct ServiceRegistry {
    known: Mutex<FxHashMap<Box<str>, i32>>,
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
            .map(|row| (row.get::<_, &str>(0).into(), row.get(1)))
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

    /// The id of each name, in order, creating the unknown ones through `client` (None in
    /// a dry run, where each new name counts as one that would be added).
    pub async fn ids(
        &self,
        client: Option<&Client>,
        names: &[Box<str>],
    ) -> crate::Result<Vec<i32>> {
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
            self.create(client, &unknown).await?;
        }
        let known = self.known.lock().expect("not poisoned");
        Ok(names.iter().map(|name| known[&**name]).collect())
    }

    async fn create(&self, client: Option<&Client>, names: &[&str]) -> crate::Result<()> {
        let Some(client) = client else {
            let mut known = self.known.lock().expect("not poisoned");
            let mut created = self.created.lock().expect("not poisoned");
            for name in names {
                if known.insert((*name).into(), 0).is_none() {
                    created.push(name.to_string());
                }
            }
            return Ok(());
        };
        let inserted = client
            .query(
                "INSERT INTO services (service_name) SELECT unnest($1::text[]) \
                 ON CONFLICT (service_name) DO NOTHING RETURNING service_name, service_id",
                &[&names],
            )
            .await?;
        // Another loader's names: committed before its insert let ours go on, so a new
        // statement sees them.
        let existing = if inserted.len() < names.len() {
            client
                .query(
                    "SELECT service_name, service_id FROM services WHERE service_name = ANY($1)",
                    &[&names],
                )
                .await?
        } else {
            Vec::new()
        };
        let mut known = self.known.lock().expect("not poisoned");
        let mut created = self.created.lock().expect("not poisoned");
        for row in &inserted {
            let name: &str = row.get(0);
            if known.insert(name.into(), row.get(1)).is_none() {
                created.push(name.to_string());
            }
        }
        for row in &existing {
            known
                .entry(row.get::<_, &str>(0).into())
                .or_insert(row.get(1));
        }
        Ok(())
    }
}
