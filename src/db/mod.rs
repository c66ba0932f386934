//! The database layer: where to connect, the connection pool, transactions that pin
//! what they need, the managed local instance, the schema migrations, the partitions
//! and retention, the privileges each kind of role needs, and every advisory-lock key.

pub mod local;
pub mod locks;
pub mod migrate;
pub mod partitions;
pub mod pgpass;
pub mod pool;
pub mod privileges;
pub mod retention;
pub mod settings;
pub mod tls;
pub mod transaction;

pub use pool::Database;
pub use settings::Target;
pub use transaction::{Isolation, transaction};
