//! Pure translation: one source object (a unit) plus a snapshot of its
//! inputs → APISIX objects. No I/O, no clock, no randomness: the same input
//! always gives the same output, on every replica.

pub mod annotations;
pub mod apisix_route;
pub mod apisix_tls;
pub mod backend;
pub mod class;
pub mod consumer;
pub mod ingress;
pub mod plugin_sets;
pub mod plugins;
pub mod tls;
pub mod upstream_settings;

use std::collections::BTreeMap;

use serde_json::Value;

use std::sync::Arc;

use crate::apisix::{ApisixDir, ApisixSchemas, CanonicalValue, EtcdKey, Keyring, Ownership};
use crate::index::{Snapshot, UnitDeps};

/// Settings that shape translation.
#[derive(Debug, Clone)]
pub struct TranslateConfig {
    /// The APISIX prefix, e.g. `/apisix`.
    pub prefix: String,
    pub ownership: Ownership,
    /// IngressClasses whose `spec.controller` equals this are ours.
    pub controller_name: String,
    /// The class name accepted in the legacy `kubernetes.io/ingress.class`
    /// annotation even without an IngressClass object.
    pub ingress_class: String,
    /// When set, secret fields (ssl keys, plugin `encrypt_fields`) are
    /// written encrypted as APISIX's data encryption expects.
    pub keyring: Option<Keyring>,
    /// APISIX's plugin schemas: when set, every plugin configuration is
    /// checked as the data plane would, and plugins it does not load are
    /// errors. Without it the data plane's silent rejection is the only check.
    pub schemas: Option<Arc<ApisixSchemas>>,
}

impl TranslateConfig {
    pub const DEFAULT_CONTROLLER_NAME: &'static str = "apisix.apache.org/apisix-operator";
    pub const DEFAULT_INGRESS_CLASS: &'static str = "apisix";
}

/// Everything a translation reads.
#[derive(Clone, Copy)]
pub struct TranslateInput<'a> {
    pub config: &'a TranslateConfig,
    pub snapshot: &'a Snapshot,
}

/// The APISIX objects of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitObjects {
    pub objects: BTreeMap<EtcdKey, CanonicalValue>,
}

impl UnitObjects {
    pub(crate) fn add(
        &mut self,
        config: &TranslateConfig,
        dir: ApisixDir,
        id: &str,
        value: Value,
    ) -> Result<(), TranslateError> {
        let key = EtcdKey::new(&config.prefix, dir, id)
            .map_err(|e| TranslateError::Internal(e.to_string()))?;
        let value = CanonicalValue::from_json(value)
            .map_err(|e| TranslateError::Internal(e.to_string()))?;
        self.objects.insert(key, value);
        Ok(())
    }
}

/// The result of translating one unit: its objects or why it failed, and
/// what it read (recorded even on failure, so fixing the input retries it).
#[derive(Debug, Clone)]
pub struct Translation {
    pub result: Result<UnitObjects, TranslateError>,
    pub deps: UnitDeps,
}

/// Why a unit could not be translated. The message is what users see (in
/// Events, status conditions and logs), so it names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("annotation {annotation}={value:?}: {reason}")]
    Annotation {
        annotation: String,
        value: String,
        reason: String,
    },
    #[error("backend service {service}: {reason}")]
    Backend { service: String, reason: String },
    #[error("tls secret {secret}: {reason}")]
    Tls { secret: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Plugin(#[from] crate::apisix::PluginError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Labels put on every object that supports them: who manages it and
/// which source object it comes from. Values satisfy APISIX's `^\S+$`.
pub(crate) fn labels(config: &TranslateConfig, kind: &str, namespace: &str, name: &str) -> Value {
    serde_json::json!({
        "managed-by": "apisix-operator",
        "apisix-operator-cluster": config.ownership.cluster(),
        "k8s-kind": kind,
        "k8s-namespace": namespace,
        "k8s-name": name,
    })
}

/// The `encrypt_fields` (APISIX `plugins/index.json`) of the plugins that
/// translation produces: (plugin, field).
const ENCRYPT_FIELDS: [(&str, &str); 1] = [("csrf", "key")];

/// Encrypts the secret fields of `plugins` when a keyring is configured.
pub(crate) fn encrypt_plugin_fields(
    plugins: &mut BTreeMap<String, Value>,
    keyring: Option<&Keyring>,
) {
    let Some(keyring) = keyring else { return };
    for (plugin, field) in ENCRYPT_FIELDS {
        if let Some(Value::String(plain)) =
            plugins.get_mut(plugin).and_then(|conf| conf.get_mut(field))
        {
            *plain = keyring.encrypt(plain);
        }
    }
}

/// Truncates a display name to APISIX's 256-character limit.
pub(crate) fn display_name(name: String) -> String {
    if name.len() <= 256 {
        return name;
    }
    let mut end = 256;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod crd_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod tests;
