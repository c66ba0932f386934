//! Service names to ids. Names are looked up in a process-wide map; a new name is
//! inserted once (ON CONFLICT makes concurrent loaders agree on one id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::runtime::Handle;
use tokio_postgres::Client;

use super::parse::ServiceIds;

/// A connection several tasks take turns on.
pub type SharedClient = Arc<tokio::sync::Mutex<Client>>;

/// The names known to this load, shared by the parse workers.
pub struct ServiceRegistry {
    known: RwLock<HashMap<String, i32>>,
    database: Option<(Handle, RwLock<SharedClient>)>,
    creating: Mutex<()>,
    created: Mutex<Vec<String>>,
}

impl ServiceRegistry {
    /// Reads the existing services; new ones are created through `client`.
    pub async fn load(client: SharedClient) -> anyhow::Result<ServiceRegistry> {
        let rows = client
            .lock()
            .await
            .query("SELECT service_name, service_id FROM services", &[])
            .await
            .map_err(crate::db::explain)?;
        let known = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        Ok(ServiceRegistry {
            known: RwLock::new(known),
            database: Some((Handle::current(), RwLock::new(client))),
            creating: Mutex::new(()),
            created: Mutex::new(Vec::new()),
        })
    }

    /// Creates new services through another connection from now on: a load that rebuilds
    /// the indexes holds a lock on `services` (dropping the foreign key takes it), so its
    /// new services must be created in its own transaction.
    pub fn create_through(&self, client: SharedClient) {
        if let Some((_, current)) = &self.database {
            *current.write().expect("not poisoned") = client;
        }
    }

    /// For --dry-run: every name gets id 0 and nothing is written.
    pub fn offline() -> ServiceRegistry {
        ServiceRegistry {
            known: RwLock::new(HashMap::new()),
            database: None,
            creating: Mutex::new(()),
            created: Mutex::new(Vec::new()),
        }
    }

    /// The names this load added (or, in a dry run, would add).
    pub fn created(&self) -> Vec<String> {
        self.created.lock().expect("not poisoned").clone()
    }

    fn id(&self, name: &str) -> anyhow::Result<i32> {
        if let Some(&id) = self.known.read().expect("not poisoned").get(name) {
            return Ok(id);
        }
        // One creator at a time, so a name seen by several workers at once is created once.
        let _creating = self.creating.lock().expect("not poisoned");
        if let Some(&id) = self.known.read().expect("not poisoned").get(name) {
            return Ok(id);
        }
        let (id, created) = match &self.database {
            None => (0, true),
            Some((runtime, client)) => runtime.block_on(async {
                let client = client.read().expect("not poisoned").clone();
                let client = client.lock().await;
                let inserted = client
                    .query_opt(
                        "INSERT INTO services (service_name) VALUES ($1) \
                         ON CONFLICT (service_name) DO NOTHING RETURNING service_id",
                        &[&name],
                    )
                    .await
                    .map_err(crate::db::explain)?;
                let id: (i32, bool) = match inserted {
                    Some(row) => (row.get(0), true),
                    None => (
                        client
                            .query_one(
                                "SELECT service_id FROM services WHERE service_name = $1",
                                &[&name],
                            )
                            .await
                            .map_err(crate::db::explain)?
                            .get(0),
                        false,
                    ),
                };
                anyhow::Ok(id)
            })?,
        };
        if created {
            self.created
                .lock()
                .expect("not poisoned")
                .push(name.to_string());
        }
        self.known
            .write()
            .expect("not poisoned")
            .insert(name.to_string(), id);
        Ok(id)
    }
}

/// A worker's own copy of the map, so the common case takes no lock (and hashes
/// with FxHash: a lookup happens for every line).
pub struct ServiceCache {
    registry: Arc<ServiceRegistry>,
    local: rustc_hash::FxHashMap<String, i32>,
}

impl ServiceCache {
    pub fn new(registry: Arc<ServiceRegistry>) -> ServiceCache {
        ServiceCache {
            registry,
            local: rustc_hash::FxHashMap::default(),
        }
    }
}

impl ServiceIds for ServiceCache {
    fn id(&mut self, name: &str) -> anyhow::Result<i32> {
        if let Some(&id) = self.local.get(name) {
            return Ok(id);
        }
        let id = self.registry.id(name)?;
        self.local.insert(name.to_string(), id);
        Ok(id)
    }
}
