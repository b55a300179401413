//! The APISIX side: the pure model from the core crate, plus fetching a
//! data plane's schemas from its Control API.

pub use apisix_operator_core::apisix::*;

pub mod control_api;
