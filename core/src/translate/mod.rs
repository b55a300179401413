//! Pure translation: one source object (a unit) plus a snapshot of its
//! inputs → APISIX objects. No I/O, no clock, no randomness: the same input
//! always gives the same output, on every replica.

pub mod annotations;
pub mod apisix_route;
pub mod apisix_tls;
pub mod apisix_upstream;
pub mod backend;
pub mod class;
pub mod consumer;
pub mod ingress;
pub mod plugin_sets;
pub mod plugins;
pub mod shared_upstream;
pub mod tls;
pub mod upstream_settings;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::apisix::Keyring;
pub use crate::model::{TranslateConfig, TranslateError, TranslateInput, Translation, UnitObjects};

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
