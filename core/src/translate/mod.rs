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
pub mod gateway;
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

/// Labels put on every object that supports them: the source object's own
/// labels (those APISIX accepts; the others are left out with a warning),
/// then who manages it and which source object it comes from, which win
/// over a user label of the same key. Values satisfy APISIX's `^\S+$`.
pub(crate) fn labels(
    config: &TranslateConfig,
    kind: &str,
    namespace: &str,
    name: &str,
    user: Option<&BTreeMap<String, String>>,
    warnings: &mut Vec<String>,
) -> Value {
    let mut labels = copied_labels(user, &format!("{kind} {namespace}/{name}"), warnings);
    for (key, value) in [
        ("managed-by", "apisix-operator"),
        ("apisix-operator-cluster", config.ownership.cluster()),
        ("k8s-kind", kind),
        ("k8s-namespace", namespace),
        ("k8s-name", name),
    ] {
        labels.insert(key.into(), value.into());
    }
    Value::Object(labels)
}

/// The labels of `owner` that APISIX accepts (a value of 1 to 256
/// characters without whitespace; Kubernetes allows empty ones); a warning
/// names each one left out.
pub(crate) fn copied_labels(
    user: Option<&BTreeMap<String, String>>,
    owner: &str,
    warnings: &mut Vec<String>,
) -> serde_json::Map<String, Value> {
    let mut labels = serde_json::Map::new();
    for (key, value) in user.into_iter().flatten() {
        if apisix_accepts_label(value) {
            labels.insert(key.clone(), value.clone().into());
        } else {
            warnings.push(format!(
                "label {key}={value:?} of {owner} is not copied into APISIX: its values are 1 to 256 characters without spaces"
            ));
        }
    }
    labels
}

/// APISIX's rule for a label value (`labels_def` in its schema).
pub fn apisix_accepts_label(value: &str) -> bool {
    (1..=256).contains(&value.chars().count()) && !value.chars().any(char::is_whitespace)
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
mod fidelity_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod tests;
