//! The APISIX side: key layout, ownership of keys, and how stored values are
//! compared. Pure code: no I/O.

mod keys;
mod ownership;
mod value;

pub use keys::{ApisixDir, EtcdKey, KeyError};
pub use ownership::Ownership;
pub use value::{CanonicalValue, StoredValue, ValueError};
