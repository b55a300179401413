//! The APISIX side: key layout, ownership of keys, and how stored values are
//! compared. Pure code: no I/O.

pub mod encryption;
pub mod ids;
mod keys;
mod ownership;
pub mod schema;
mod value;

pub use encryption::{Keyring, KeyringError};
pub use ids::{IdKind, object_id};
pub use keys::{ApisixDir, EtcdKey, KeyError, is_valid_id};
pub use ownership::Ownership;
pub use schema::{
    ApisixSchemas, ObjectError, PluginError, PluginUse, SHIPPED_APISIX_VERSION, SchemaError,
};
pub use value::{CanonicalValue, StoredValue, ValueError};
