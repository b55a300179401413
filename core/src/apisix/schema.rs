//! APISIX's schemas, in the format of the Control API's `GET /v1/schema`:
//! the core objects' (routes, upstreams, ssls, ...) and every plugin's; and
//! checks that behave like APISIX's own validator (api7/jsonschema, draft 7
//! with quirks):
//!
//! 1. defaults are filled in before `required`, `if`/`then`, `oneOf`, … are
//!    checked (so a default can satisfy them);
//! 2. a string starting with `$secret://` or `$ENV://` passes any node that
//!    expects a string;
//! 3. an empty `{}` and an empty `[]` are the same (Lua cannot tell them apart);
//! 4. a plugin whose `_meta.disable` is `true` is accepted even if invalid.
//!
//! The endpoint also encodes empty arrays in schemas as `{}` (Lua's cjson);
//! they are read as `[]` where an array is expected.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::ApisixDir;

/// Which of a plugin's schemas applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginUse {
    /// Routes, services, plugin configs, global rules.
    Http,
    /// Consumers and credentials (`consumer_schema`, falling back to `schema`).
    Consumer,
    /// Stream routes (`stream_plugins`).
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read the APISIX schema {source_name}: {reason}")]
    Load { source_name: String, reason: String },
    #[error("the APISIX schema {source_name} is not a Control API /v1/schema document: {reason}")]
    Format { source_name: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} is not loaded on the APISIX data plane (not in its schema)")]
    Unknown { plugin: String },
    #[error("plugin {plugin}: {reason}")]
    Invalid { plugin: String, reason: String },
}

/// A core object APISIX would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("APISIX would refuse the {dir} object {id}: {reason}")]
pub struct ObjectError {
    pub dir: &'static str,
    pub id: String,
    pub reason: String,
}

/// One schema, compiled on first use and kept (compiling is far costlier
/// than validating).
struct Compiled {
    schema: Value,
    validator: OnceLock<Result<Arc<jsonschema::Validator>, String>>,
}

impl Compiled {
    fn new(schema: Value) -> Arc<Compiled> {
        Arc::new(Compiled {
            schema,
            validator: OnceLock::new(),
        })
    }

    fn validator(&self) -> Result<&jsonschema::Validator, &str> {
        self.validator
            .get_or_init(|| {
                jsonschema::draft7::new(&self.schema)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map(|v| v.as_ref())
            .map_err(String::as_str)
    }

    /// The problems APISIX's validator would find in `instance`.
    fn problems(&self, instance: &Value) -> Result<Vec<String>, String> {
        let mut instance = instance.clone();
        fill_defaults(&self.schema, &mut instance);
        let validator = self
            .validator()
            .map_err(|e| format!("its APISIX schema does not compile: {e}"))?;
        Ok(validator
            .iter_errors(&instance)
            .filter(|error| !is_tolerated(error, &instance))
            .map(|error| {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("{path}: {error}")
                }
            })
            .collect())
    }
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("compiled", &self.validator.get().is_some())
            .finish()
    }
}

/// The APISIX release whose schemas ship with the project.
pub const SHIPPED_APISIX_VERSION: &str = "3.18.0";

/// The schemas of one APISIX deployment: core objects and plugins.
#[derive(Debug, Clone)]
pub struct ApisixSchemas {
    objects: BTreeMap<ApisixDir, Arc<Compiled>>,
    http: BTreeMap<String, Arc<Compiled>>,
    consumer: BTreeMap<String, Arc<Compiled>>,
    stream: BTreeMap<String, Arc<Compiled>>,
}

/// The `main` schema of each directory the operator writes.
const OBJECT_SCHEMAS: [(ApisixDir, &str); 8] = [
    (ApisixDir::Routes, "route"),
    (ApisixDir::Upstreams, "upstream"),
    (ApisixDir::Ssls, "ssl"),
    (ApisixDir::Consumers, "consumer"),
    (ApisixDir::PluginConfigs, "plugin_config"),
    (ApisixDir::GlobalRules, "global_rule"),
    (ApisixDir::StreamRoutes, "stream_route"),
    (ApisixDir::Services, "service"),
];

impl ApisixSchemas {
    /// Parses a saved `/v1/schema` response named `source_name` (a file
    /// name or URL, for error messages).
    pub fn from_text(source_name: &str, text: &str) -> Result<ApisixSchemas, SchemaError> {
        let value: Value = serde_json::from_str(text).map_err(|e| SchemaError::Format {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        ApisixSchemas::from_value(source_name, value)
    }

    /// The schemas of the APISIX release this project ships a snapshot of
    /// ([`SHIPPED_APISIX_VERSION`]): its Control API `/v1/schema`.
    pub fn shipped() -> &'static ApisixSchemas {
        static SHIPPED: std::sync::OnceLock<ApisixSchemas> = std::sync::OnceLock::new();
        SHIPPED.get_or_init(|| {
            ApisixSchemas::from_text(
                "the shipped APISIX schema",
                include_str!("../../apisix-schema/control-api-3.18.0.json"),
            )
            .expect("the shipped schema parses")
        })
    }

    pub fn from_value(source_name: &str, value: Value) -> Result<ApisixSchemas, SchemaError> {
        let format = |reason: &str| SchemaError::Format {
            source_name: source_name.to_string(),
            reason: reason.to_string(),
        };
        let plugins = value
            .get("plugins")
            .and_then(Value::as_object)
            .ok_or_else(|| format("no \"plugins\" object"))?;
        let mut schemas = ApisixSchemas {
            objects: BTreeMap::new(),
            http: BTreeMap::new(),
            consumer: BTreeMap::new(),
            stream: BTreeMap::new(),
        };
        let main = value.get("main").and_then(Value::as_object);
        for (dir, name) in OBJECT_SCHEMAS {
            if let Some(schema) = main.and_then(|m| m.get(name)) {
                schemas
                    .objects
                    .insert(dir, Compiled::new(normalize(schema.clone())));
            }
        }
        for (name, entry) in plugins {
            let schema = entry
                .get("schema")
                .ok_or_else(|| format(&format!("plugin {name} has no schema")))?;
            schemas
                .http
                .insert(name.clone(), Compiled::new(normalize(schema.clone())));
            let consumer = entry.get("consumer_schema").unwrap_or(schema);
            schemas
                .consumer
                .insert(name.clone(), Compiled::new(normalize(consumer.clone())));
        }
        for (name, entry) in value
            .get("stream_plugins")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(schema) = entry.get("schema") {
                schemas
                    .stream
                    .insert(name.clone(), Compiled::new(normalize(schema.clone())));
            }
        }
        Ok(schemas)
    }

    pub fn has_plugin(&self, name: &str, usage: PluginUse) -> bool {
        self.table(usage).contains_key(name)
    }

    fn table(&self, usage: PluginUse) -> &BTreeMap<String, Arc<Compiled>> {
        match usage {
            PluginUse::Http => &self.http,
            PluginUse::Consumer => &self.consumer,
            PluginUse::Stream => &self.stream,
        }
    }

    /// Checks one plugin configuration as the data plane would.
    pub fn check(&self, name: &str, conf: &Value, usage: PluginUse) -> Result<(), PluginError> {
        let schema = self
            .table(usage)
            .get(name)
            .ok_or_else(|| PluginError::Unknown {
                plugin: name.to_string(),
            })?;
        let disabled = conf.pointer("/_meta/disable") == Some(&Value::Bool(true));
        let problems = schema
            .problems(conf)
            .map_err(|reason| PluginError::Invalid {
                plugin: name.to_string(),
                reason,
            })?;
        if problems.is_empty() || disabled {
            Ok(())
        } else {
            Err(PluginError::Invalid {
                plugin: name.to_string(),
                reason: problems.join("; "),
            })
        }
    }

    /// Checks a core object (a route, an upstream, ...) against its
    /// directory's schema; the plugins in it are checked on their own.
    /// Directories without a schema pass.
    pub fn check_object(&self, dir: ApisixDir, id: &str, value: &Value) -> Result<(), ObjectError> {
        let Some(schema) = self.objects.get(&dir) else {
            return Ok(());
        };
        let error = |reason: String| ObjectError {
            dir: dir.as_str(),
            id: id.to_string(),
            reason,
        };
        let problems = schema.problems(value).map_err(error)?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(error(problems.join("; ")))
        }
    }

    /// Checks every plugin of a `plugins` map.
    pub fn check_all(
        &self,
        plugins: &Map<String, Value>,
        usage: PluginUse,
    ) -> Result<(), PluginError> {
        plugins
            .iter()
            .try_for_each(|(name, conf)| self.check(name, conf, usage))
    }
}

/// The Control API's `{}` for empty arrays, read as `[]` where an array is
/// meant: `required`, `enum`, `anyOf`/`oneOf`/`allOf`, and array defaults.
fn normalize(mut schema: Value) -> Value {
    fn walk(node: &mut Value) {
        match node {
            Value::Object(map) => {
                for key in ["required", "enum", "anyOf", "oneOf", "allOf"] {
                    if map
                        .get(key)
                        .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
                    {
                        map.insert(key.into(), Value::Array(Vec::new()));
                    }
                }
                let is_array = map.get("type").and_then(Value::as_str) == Some("array");
                if is_array
                    && map
                        .get("default")
                        .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
                {
                    map.insert("default".into(), Value::Array(Vec::new()));
                }
                // `required: []` is not valid draft 7 for some validators; drop it.
                if map
                    .get("required")
                    .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
                {
                    map.remove("required");
                }
                if let Some(Value::String(pattern)) = map.get_mut("pattern") {
                    *pattern = pcre_class_brackets(pattern);
                }
                if let Some(Value::Object(patterns)) = map.remove("patternProperties") {
                    let rewritten: Map<String, Value> = patterns
                        .into_iter()
                        .map(|(pattern, schema)| (pcre_class_brackets(&pattern), schema))
                        .collect();
                    map.insert("patternProperties".into(), Value::Object(rewritten));
                }
                for value in map.values_mut() {
                    walk(value);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

/// PCRE reads an unescaped `[` inside a character class as a literal; the
/// Rust regex engines read it as a nested class. Escape it.
fn pcre_class_brackets(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut class_start = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
                class_start = false;
                continue;
            }
            '[' if in_class => out.push_str("\\["),
            '[' => {
                in_class = true;
                class_start = true;
                out.push(c);
                continue;
            }
            ']' if in_class && !class_start => {
                in_class = false;
                out.push(c);
            }
            '^' if class_start => {
                out.push(c);
                continue;
            }
            _ => out.push(c),
        }
        class_start = false;
    }
    out
}

/// Fills `default`s of `properties` into objects, recursively, before
/// validation, as APISIX's validator does.
fn fill_defaults(schema: &Value, instance: &mut Value) {
    let (Some(properties), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        instance.as_object_mut(),
    ) else {
        return;
    };
    for (name, property) in properties {
        if let (false, Some(default)) = (object.contains_key(name), property.get("default")) {
            object.insert(name.clone(), default.clone());
        }
        if let Some(child) = object.get_mut(name) {
            fill_defaults(property, child);
        }
    }
}

/// Errors APISIX's validator would not raise: secret references where a
/// string is expected, and `{}`/`[]` standing for each other.
fn is_tolerated(error: &jsonschema::ValidationError<'_>, instance: &Value) -> bool {
    let Some(value) = instance.pointer(&error.instance_path().to_string()) else {
        return false;
    };
    if let Value::String(text) = value {
        let lower = text.to_ascii_lowercase();
        if text.starts_with("$secret://") || lower.starts_with("$env://") {
            return true;
        }
    }
    let empty = matches!(value, Value::Object(m) if m.is_empty())
        || matches!(value, Value::Array(a) if a.is_empty());
    empty
        && matches!(
            error.kind(),
            jsonschema::error::ValidationErrorKind::Type { .. }
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> ApisixSchemas {
        // A small schema of our own in the Control API's shape.
        ApisixSchemas::from_value(
            "fixture",
            json!({
                "main": {},
                "plugins": {
                    "limit-count": {"schema": {
                        "type": "object",
                        "properties": {
                            "count": {"type": "integer", "exclusiveMinimum": 0},
                            "time_window": {"type": "integer", "exclusiveMinimum": 0},
                            "policy": {"type": "string", "enum": ["local", "redis"], "default": "local"},
                            "redis_host": {"type": "string"},
                            "_meta": {"type": "object", "properties": {"disable": {"type": "boolean"}}},
                        },
                        "required": ["count", "time_window"],
                        "if": {"properties": {"policy": {"enum": ["redis"]}}},
                        "then": {"required": ["redis_host"]},
                    }},
                    "key-auth": {
                        "schema": {"type": "object", "properties": {"header": {"type": "string", "default": "apikey"}}},
                        "consumer_schema": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
                    },
                    "ip-restriction": {"schema": {"type": "object", "properties": {
                        "whitelist": {"type": "array", "items": {"type": "string"}, "minItems": 1, "default": {}},
                    }, "required": {}}},
                },
                "stream_plugins": {"ip-restriction": {"schema": {"type": "object"}}},
            }),
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_filled_before_conditional_rules() {
        let schemas = fixture();
        // policy defaults to local, so the redis `then` does not apply.
        assert!(
            schemas
                .check(
                    "limit-count",
                    &json!({"count": 1, "time_window": 60}),
                    PluginUse::Http
                )
                .is_ok()
        );
        let err = schemas
            .check(
                "limit-count",
                &json!({"count": 1, "time_window": 60, "policy": "redis"}),
                PluginUse::Http,
            )
            .unwrap_err();
        assert!(err.to_string().contains("redis_host"), "{err}");
        let err = schemas
            .check(
                "limit-count",
                &json!({"count": 0, "time_window": 60}),
                PluginUse::Http,
            )
            .unwrap_err();
        assert!(err.to_string().contains("/count"), "{err}");
    }

    #[test]
    fn apisix_quirks_are_mirrored() {
        let schemas = fixture();
        // Secret references pass where a string is expected.
        assert!(
            schemas
                .check(
                    "key-auth",
                    &json!({"key": "$secret://vault/1/key"}),
                    PluginUse::Consumer
                )
                .is_ok()
        );
        assert!(
            schemas
                .check(
                    "key-auth",
                    &json!({"key": "$ENV://KEY"}),
                    PluginUse::Consumer
                )
                .is_ok()
        );
        // {} and [] stand for each other.
        assert!(
            schemas
                .check("ip-restriction", &json!({"whitelist": {}}), PluginUse::Http)
                .is_ok()
        );
        assert!(
            schemas
                .check(
                    "ip-restriction",
                    &json!({"whitelist": "10.0.0.1"}),
                    PluginUse::Http
                )
                .is_err()
        );
        assert!(
            schemas
                .check("key-auth", &json!({"header": "h"}), PluginUse::Http)
                .is_ok()
        );
        // A disabled plugin is accepted even if invalid.
        assert!(
            schemas
                .check(
                    "limit-count",
                    &json!({"count": -1, "time_window": 60, "_meta": {"disable": true}}),
                    PluginUse::Http
                )
                .is_ok()
        );
        // Consumer schemas apply to consumers.
        assert!(
            schemas
                .check("key-auth", &json!({}), PluginUse::Consumer)
                .is_err()
        );
        assert!(
            schemas
                .check("key-auth", &json!({}), PluginUse::Http)
                .is_ok()
        );
    }

    #[test]
    fn pcre_brackets_in_classes_are_escaped() {
        assert_eq!(pcre_class_brackets(r"^[ -!#-[\]-~]+$"), r"^[ -!#-\[\]-~]+$");
        assert_eq!(pcre_class_brackets(r"^[a-z]+\[x\]$"), r"^[a-z]+\[x\]$");
        assert_eq!(pcre_class_brackets(r"[]a]"), r"[]a]");
        assert_eq!(pcre_class_brackets(r"[^]a[]"), r"[^]a\[]");
        assert!(regex::Regex::new(&pcre_class_brackets(r"^[ -!#-[\]-~]+$")).is_ok());
    }

    #[test]
    fn unknown_plugins_are_errors() {
        let schemas = fixture();
        assert_eq!(
            schemas.check("no-such-plugin", &json!({}), PluginUse::Http),
            Err(PluginError::Unknown {
                plugin: "no-such-plugin".into()
            })
        );
        assert!(schemas.has_plugin("ip-restriction", PluginUse::Stream));
        assert!(!schemas.has_plugin("limit-count", PluginUse::Stream));
    }

    #[test]
    fn the_shipped_control_api_schema_loads_and_judges_real_plugins() {
        let schemas = ApisixSchemas::shipped();
        assert!(
            schemas
                .check(
                    "cors",
                    &json!({"allow_origins": "https://a.com"}),
                    PluginUse::Http
                )
                .is_ok()
        );
        assert!(
            schemas
                .check("redirect", &json!({"http_to_https": true}), PluginUse::Http)
                .is_ok()
        );
        assert!(
            schemas
                .check(
                    "proxy-rewrite",
                    &json!({"regex_uri": ["^/a/(.*)", "/b/$1"]}),
                    PluginUse::Http
                )
                .is_ok()
        );
        assert!(
            schemas
                .check(
                    "limit-count",
                    &json!({"count": 10, "time_window": 60}),
                    PluginUse::Http
                )
                .is_ok()
        );
        // Neither count+time_window nor rules: the schema's oneOf fails.
        assert!(
            schemas
                .check("limit-count", &json!({"count": 10}), PluginUse::Http)
                .is_err()
        );
        assert!(
            schemas
                .check("cors", &json!({"max_age": "forever"}), PluginUse::Http)
                .is_err()
        );
        assert!(
            schemas
                .check("key-auth", &json!({"key": "k"}), PluginUse::Consumer)
                .is_ok()
        );
    }
}
