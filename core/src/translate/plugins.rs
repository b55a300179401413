//! The `plugins` of APISIX CRs: enabled plugins only, `secretRef` merged
//! into the configuration (a `.` in a Secret key makes nested objects;
//! Secret values override), checked against APISIX's schema when one is
//! configured, and their secret fields encrypted with the keyring.

use serde_json::{Map, Value};

use super::{TranslateConfig, TranslateError, encrypt_plugin_fields};
use crate::api::Plugin;
use crate::apisix::PluginUse;
use crate::inputs::SecretKind;
use crate::model::{Dependency, ObjectKey, Snapshot, SourceKind, UnitDeps};

/// Builds an APISIX `plugins` object from CR plugins in `namespace`. An
/// error names the plugin's place in `plugins` (`[1]`).
pub fn plugins_object(
    config: &TranslateConfig,
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    namespace: &str,
    plugins: &[Plugin],
    usage: PluginUse,
) -> Result<Map<String, Value>, TranslateError> {
    let mut out = Map::new();
    for (index, plugin) in plugins.iter().enumerate().filter(|(_, p)| p.enable) {
        let conf = plugin_conf(config, snapshot, deps, namespace, plugin, usage, &out)
            .map_err(|error| error.at(format!("[{index}]")))?;
        out.insert(plugin.name.clone(), conf);
    }
    let mut as_tree: std::collections::BTreeMap<String, Value> = out.into_iter().collect();
    encrypt_plugin_fields(&mut as_tree, config.keyring.as_ref());
    Ok(as_tree.into_iter().collect())
}

/// One enabled plugin's configuration, its `secretRef` merged in, checked
/// against APISIX's schema when one is configured.
fn plugin_conf(
    config: &TranslateConfig,
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    namespace: &str,
    plugin: &Plugin,
    usage: PluginUse,
    earlier: &Map<String, Value>,
) -> Result<Value, TranslateError> {
    if earlier.contains_key(&plugin.name) {
        return Err(TranslateError::Invalid(format!(
            "plugin {} is listed twice",
            plugin.name
        )));
    }
    let mut conf: Map<String, Value> = plugin
        .config
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(secret_name) = &plugin.secret_ref {
        let key = ObjectKey::new(namespace, secret_name);
        deps.insert(Dependency::object(SecretKind::KIND, key.clone()));
        let secret = snapshot.get::<SecretKind>(&key).ok_or_else(|| {
            TranslateError::missing(
                SecretKind::KIND,
                &key,
                format!("plugin {}: secretRef {key} not found", plugin.name),
            )
        })?;
        for (field, value) in secret_strings(secret) {
            insert_dotted(&mut conf, &field, Value::String(value));
        }
    }
    let conf = Value::Object(conf);
    if let Some(schemas) = &config.schemas {
        schemas.check(&plugin.name, &conf, usage)?;
    }
    Ok(conf)
}

/// Every key of a Secret (data, then stringData) as a UTF-8 string.
pub fn secret_strings(secret: &k8s_openapi::api::core::v1::Secret) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| String::from_utf8(v.0.clone()).ok().map(|v| (k.clone(), v)))
        .collect();
    out.extend(
        secret
            .string_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out
}

/// `a.b.c` → `{"a": {"b": {"c": value}}}`, overriding what is there.
fn insert_dotted(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            insert_dotted(child.as_object_mut().expect("made an object"), rest, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_keys_make_nested_objects_and_override() {
        let mut map = json!({"a": {"x": 1}, "b": 2}).as_object().unwrap().clone();
        insert_dotted(&mut map, "a.y.z", json!("v"));
        insert_dotted(&mut map, "b", json!("s"));
        assert_eq!(
            Value::Object(map),
            json!({"a": {"x": 1, "y": {"z": "v"}}, "b": "s"})
        );
    }
}
