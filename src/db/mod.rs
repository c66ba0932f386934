//! The database layer: where to connect, the connection pool, the managed local
//! instance, the schema migrations, the partitions and retention, and every
//! advisory-lock key.

pub mod local;
pub mod locks;
pub mod migrate;
pub mod partitions;
pub mod pgpass;
pub mod pool;
pub mod retention;
pub mod settings;
pub mod tls;

pub use pool::Database;
pub use settings::Target;
