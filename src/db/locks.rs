//! Every advisory-lock key logctl takes, in one place. All are transaction-level: a
//! session lock would outlive a transaction behind a pooler. The two-key locks share the
//! class number with the SQL functions named beside them, which receive it when the
//! migrations are rendered (`{{lock:...}}` in `sql/`), so Rust and SQL cannot drift apart.
//! All keys spell "logc..." in ASCII, away from other applications' locks.

/// Class of the transaction lock a load holds, in a transaction of its own, for as long
/// as it runs (with its random loader number): its claims on sources are alive while it
/// is held. `ingest::ledger` and `logctl_claim` (sql/005_claims_and_roles.sql).
pub const LOADER_ALIVE: i32 = 0x6c6f_6763;

/// Class of the transaction lock that serialises commits of one source's ranges (with
/// the start of its ledger key): `logctl_commit_range` and `logctl_compact_ranges`
/// (sql/002_ledger.sql).
pub const SOURCE_COMMIT: i32 = 0x6c6f_6764;

/// Class of the transaction lock on a partition's name while it is created (with
/// `hashtext(name)`): `logctl_ensure_partition` (sql/003, sql/004) and the loads that
/// build new partitions detached (`ingest::rebuild`).
pub const PARTITION_NAME: i32 = 0x6c6f_6765;

/// Held by the one transaction at a time that builds new partitions detached ("logcpart").
pub const NEW_PARTITIONS: i64 = 0x6c6f_6763_7061_7274;

/// Held by every writer of the rollup grains ("logcroll"), so that reading and then
/// upserting a cell needs no row locks (which Citus refuses across shards): exclusively
/// by a transaction that converts rollups or prunes old cells (`analytics::compact`'s
/// conversion, `db::retention`), or that holds it for a rebuild of a range on another
/// connection (`analytics::rebuild`), shared by the compaction steps, which also hold
/// their lane's lock of `ROLLUP_LANES`.
pub const ROLLUPS: i64 = 0x6c6f_6763_726f_6c6c;

/// Held by the one compaction step at a time of each lane of services ("logcrln0",
/// "logcrln1"; see `analytics::compact::LANES`): lanes write disjoint cells.
pub const ROLLUP_LANES: [i64; 2] = [0x6c6f_6763_726c_6e30, 0x6c6f_6763_726c_6e31];

/// Serialises concurrent `logctl schema` runs ("logctl").
pub const MIGRATION: i64 = 0x6c6f_6763_746c;

/// The substitutions that give the migrations their lock classes.
pub const SQL_PLACEHOLDERS: [(&str, i32); 3] = [
    ("{{lock:loader_alive}}", LOADER_ALIVE),
    ("{{lock:source_commit}}", SOURCE_COMMIT),
    ("{{lock:partition_name}}", PARTITION_NAME),
];
