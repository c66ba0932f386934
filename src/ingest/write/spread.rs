//! Which shard of a Citus cluster each batch goes to. `log_events` is distributed by
//! `spread` (sql/009_spread.sql), and every batch gets one key: its rows and its rollup
//! deltas land on one shard, and the batches go to the shards in turn, so the workers
//! get as many rows whatever the services are. Elsewhere there is no spread.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::GenericClient;

use crate::Error;

const KEYS_SQL: &str = include_str!("../../../sql/spread_keys.sql");

/// A key for each shard, handed out in turn.
pub(crate) struct Spread {
    keys: Vec<i32>,
    turn: AtomicUsize,
}

impl Spread {
    /// The shards' keys as they are now (after a rebalance or a split too). The turns
    /// start at a random shard: loads of one batch each (a cron job's new lines) would
    /// otherwise all go to the first.
    pub async fn load(client: &impl GenericClient) -> crate::Result<Spread> {
        let keys: Vec<i32> = client
            .query_one(KEYS_SQL, &[])
            .await?
            .get::<_, Option<Vec<i32>>>(0)
            .ok_or_else(|| {
                Error::Failed("log_events has no shards on this Citus cluster".into())
            })?;
        Ok(Spread {
            turn: AtomicUsize::new(rand::random_range(0..keys.len().max(1))),
            keys,
        })
    }

    /// The next batch's key.
    pub fn next(&self) -> i32 {
        self.keys[self.turn.fetch_add(1, Ordering::Relaxed) % self.keys.len()]
    }
}
