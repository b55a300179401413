//! The APISIX CRDs, `apisix.apache.org/v2`, with every field of the
//! reference controller. Validation that the schema can express (enums,
//! patterns, ranges, CEL rules across fields) is in the generated CRDs, so
//! the API server itself rejects what it can. `apisix-operator crds` prints
//! them; `crds/` holds them, checked by a test.

mod common;
mod consumer;
pub mod gateway;
mod global;
mod route;
mod tls;
mod upstream;

pub use common::{
    ApisixStatus, Condition, Plugin, SecretReference, TimeoutSettings, all_crds, crds_yaml,
};
pub use consumer::{ApisixConsumer, ApisixConsumerSpec, AuthParameter};

/// Secret references of consumer credentials.
pub mod consumer_secret {
    pub use super::consumer::LocalSecretReference;
}
pub use global::{
    ApisixClusterConfig, ApisixClusterConfigSpec, ApisixGlobalRule, ApisixGlobalRuleSpec,
    ApisixPluginConfig, ApisixPluginConfigSpec,
};
pub use route::{ApisixRoute, ApisixRouteSpec, HttpRoute, StreamRoute};
pub use tls::{ApisixTls, ApisixTlsSpec};
pub use upstream::{ApisixUpstream, ApisixUpstreamSpec, UpstreamSettings};

/// The nested types of ApisixUpstream.
pub mod upstream_types {
    pub use super::upstream::*;
}

/// The nested types of ApisixRoute.
pub mod route_types {
    pub use super::route::*;
}

/// The API group of the APISIX CRDs.
pub const GROUP: &str = "apisix.apache.org";
