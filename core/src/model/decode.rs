//! Decoding that cannot block: a watched object that does not decode into
//! our types is kept as its metadata plus the reason, so it becomes a failed
//! unit of its own instead of failing the whole list of its kind. Reasons
//! name the field path and what was expected, never the value found (object
//! contents, credentials among them, must not reach logs or Events).

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::{DynamicResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Why an object does not decode: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DecodeError {
    /// The field path, such as `spec.http[0].backends[0].servicePort`.
    pub path: String,
    /// What is wrong, without the value found.
    pub reason: String,
}

/// An object that did not decode: its metadata (so its key, Events and
/// status can be addressed) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidObject {
    pub metadata: ObjectMeta,
    pub error: DecodeError,
}

/// What a watch of `T` delivers for one object.
#[derive(Debug, Clone)]
pub enum Guarded<T> {
    Valid(T),
    /// Boxed: rare, and larger than most objects.
    Invalid(Box<InvalidObject>),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Guarded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(from_str::<T>(raw.get()))
    }
}

/// Decodes one object from its JSON text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Guarded<T> {
    let mut json = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut json) {
        Ok(object) => Guarded::Valid(object),
        Err(err) => {
            let mut error = decode_error(err);
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
                refine::<T>(&value, &mut error);
            }
            Guarded::Invalid(Box::new(InvalidObject {
                metadata: metadata_of(text),
                error,
            }))
        }
    }
}

/// serde loses the path inside flattened structs (an ApisixUpstream's
/// settings): the error then names the enclosing object. Find the field by
/// trying without each of that object's fields in turn: the one whose
/// absence makes the object decode is the culprit.
fn refine<T: DeserializeOwned>(root: &serde_json::Value, error: &mut DecodeError) {
    let pointer = json_pointer(&error.path);
    let Some(serde_json::Value::Object(fields)) = root.pointer(&pointer) else {
        return;
    };
    if fields.len() > 64 {
        return;
    }
    for name in fields.keys() {
        let mut without = root.clone();
        if let Some(serde_json::Value::Object(parent)) = without.pointer_mut(&pointer) {
            parent.remove(name);
        }
        if serde_json::from_value::<T>(without).is_ok() {
            error.path = if error.path == "(object)" {
                name.clone()
            } else {
                format!("{}.{name}", error.path)
            };
            return;
        }
    }
}

/// `spec.http[0].backends` → `/spec/http/0/backends`.
fn json_pointer(path: &str) -> String {
    if path == "(object)" {
        return String::new();
    }
    let mut pointer = String::new();
    for segment in path.split('.') {
        let (field, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        if !field.is_empty() {
            pointer.push('/');
            pointer.push_str(&field.replace('~', "~0").replace('/', "~1"));
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            pointer.push('/');
            pointer.push_str(index.trim_end_matches(']'));
        }
    }
    pointer
}

/// Decodes one object from a JSON value (objects read from files).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(decode_error)
}

fn metadata_of(text: &str) -> ObjectMeta {
    #[derive(Deserialize)]
    struct MetadataOnly {
        #[serde(default)]
        metadata: ObjectMeta,
    }
    serde_json::from_str::<MetadataOnly>(text)
        .map(|m| m.metadata)
        .unwrap_or_default()
}

fn decode_error<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> DecodeError {
    let path = err.path().to_string();
    DecodeError {
        path: if path == "." { "(object)".into() } else { path },
        reason: redact(&err.inner().to_string()),
    }
}

/// serde's messages quote the offending value (`invalid type: string
/// "hunter2", expected i64`); keep what was expected and the type found.
pub fn redact(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    let expected = message
        .split_once(", expected ")
        .map(|(_, expected)| expected);
    if let Some(found) = message.strip_prefix("invalid type: ") {
        let found_type = found.split([',', ' ', '`', '"']).next().unwrap_or_default();
        return match expected {
            Some(expected) => format!("invalid type: {found_type}, expected {expected}"),
            None => format!("invalid type: {found_type}"),
        };
    }
    for (prefix, what) in [
        ("invalid value: ", "invalid value"),
        ("unknown variant ", "unknown variant"),
        ("invalid length ", "invalid length"),
    ] {
        if message.starts_with(prefix) {
            return match expected {
                Some(expected) => format!("{what}, expected {expected}"),
                None => what.to_string(),
            };
        }
    }
    // Field names (missing, unknown, duplicate field `x`) are the schema's,
    // not the object's values; anything else loses its quoted parts.
    if message.starts_with("missing field ") || message.starts_with("duplicate field ") {
        return message.to_string();
    }
    redact_quoted(message)
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut closing: Option<char> = None;
    for c in message.chars() {
        match closing {
            Some(close) if c == close => {
                out.push('…');
                out.push(c);
                closing = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    closing = Some(c);
                }
            }
        }
    }
    out
}

impl<T: Resource<DynamicType = ()>> Resource for Guarded<T> {
    type DynamicType = ();
    // Any scope: the registry decides per kind whether to watch namespaces.
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        T::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        T::group(&())
    }
    fn version(_: &()) -> Cow<'_, str> {
        T::version(&())
    }
    fn plural(_: &()) -> Cow<'_, str> {
        T::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Guarded::Valid(object) => object.meta(),
            Guarded::Invalid(invalid) => &invalid.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Guarded::Valid(object) => object.meta_mut(),
            Guarded::Invalid(invalid) => &mut invalid.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn a_bad_object_keeps_its_metadata_and_the_path() {
        let text =
            r#"{"metadata":{"name":"web","namespace":"shop"},"spec":{"ports":[{"port":{"x":1}}]}}"#;
        let Guarded::Invalid(invalid) = from_str::<Service>(text) else {
            panic!("decoded")
        };
        assert_eq!(invalid.metadata.name.as_deref(), Some("web"));
        assert_eq!(invalid.error.path, "spec.ports[0].port");
        assert_eq!(invalid.error.reason, "invalid type: map, expected i32");
    }

    #[test]
    fn values_never_reach_the_reason() {
        let text = r#"{"metadata":{"name":"web"},"spec":{"clusterIP":{"secret":"hunter2"},"ports":[{"port":"hunter2"}]}}"#;
        let Guarded::Invalid(invalid) = from_str::<Service>(text) else {
            panic!("decoded")
        };
        let shown = invalid.error.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        for message in [
            r#"invalid type: string "hunter2", expected i32 at line 1 column 9"#,
            "invalid value: string \"hunter2\", expected a duration",
            "unknown variant `hunter2`, expected one of `a`, `b`",
            "something else about `hunter2` and \"hunter2\"",
        ] {
            let redacted = redact(message);
            assert!(!redacted.contains("hunter2"), "{redacted}");
            assert!(!redacted.contains("line 1"), "{redacted}");
        }
        assert_eq!(
            redact(r#"invalid type: string "hunter2", expected i32"#),
            "invalid type: string, expected i32"
        );
        assert_eq!(redact("missing field `name`"), "missing field `name`");
    }

    #[test]
    fn a_field_inside_a_flattened_struct_is_still_named() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Settings {
            retries: Option<i64>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Spec {
            name: String,
            #[serde(flatten)]
            settings: Settings,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Object {
            spec: Spec,
        }
        let Guarded::Invalid(invalid) =
            from_str::<Object>(r#"{"spec":{"name":"a","retries":"many"}}"#)
        else {
            panic!("decoded")
        };
        assert_eq!(invalid.error.path, "spec.retries");
        assert_eq!(
            json_pointer("spec.http[0].backends[12]"),
            "/spec/http/0/backends/12"
        );
    }

    #[test]
    fn a_good_object_decodes() {
        let text = r#"{"metadata":{"name":"web"},"spec":{"ports":[{"port":80}]}}"#;
        assert!(matches!(from_str::<Service>(text), Guarded::Valid(_)));
    }
}
