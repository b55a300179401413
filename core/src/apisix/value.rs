//! Values as compared by the planner: compact JSON with sorted keys and
//! without the `create_time`/`update_time` stamps that the writer adds.
//!
//! Comparing canonical bytes (instead of parsed JSON) keeps planning over
//! 100k keys cheap: each stored value is canonicalised once, when it arrives.

use std::sync::Arc;

use serde_json::{Map, Value};

const CREATE_TIME: &str = "create_time";
const UPDATE_TIME: &str = "update_time";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("an APISIX value must be a JSON object, got {0}")]
    NotAnObject(&'static str),
}

/// A desired or stored APISIX value in canonical form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CanonicalValue(Arc<[u8]>);

impl std::fmt::Debug for CanonicalValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CanonicalValue({})", String::from_utf8_lossy(&self.0))
    }
}

impl CanonicalValue {
    /// Canonicalises an object: drops the timestamps and sorts keys at every
    /// depth (whatever map order serde_json was built with).
    pub fn from_json(value: Value) -> Result<CanonicalValue, ValueError> {
        let Value::Object(mut map) = value else {
            return Err(ValueError::NotAnObject(kind_name(&value)));
        };
        map.remove(CREATE_TIME);
        map.remove(UPDATE_TIME);
        let sorted = sort_keys(Value::Object(map));
        Ok(CanonicalValue(
            serde_json::to_vec(&sorted)
                .expect("a JSON value always serializes")
                .into(),
        ))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> Value {
        serde_json::from_slice(&self.0).expect("canonical values are valid JSON")
    }

    /// The bytes to store: the value plus the timestamps, as the Admin API
    /// would write them.
    pub fn stamped(&self, create_time: i64, update_time: i64) -> Vec<u8> {
        let mut value = self.to_json();
        let map = value.as_object_mut().expect("canonical values are objects");
        map.insert(CREATE_TIME.into(), create_time.into());
        map.insert(UPDATE_TIME.into(), update_time.into());
        serde_json::to_vec(&sort_keys(value)).expect("a JSON value always serializes")
    }
}

/// A value read from etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// `None` when the bytes are not a JSON object (for example APISIX's
    /// `init_dir` placeholders): such a value never equals a desired one.
    pub canonical: Option<CanonicalValue>,
    /// Kept when we rewrite the key, as the Admin API does.
    pub create_time: Option<i64>,
}

impl StoredValue {
    pub fn parse(raw: &[u8]) -> StoredValue {
        match serde_json::from_slice::<Value>(raw) {
            Ok(value) => {
                let create_time = value.get(CREATE_TIME).and_then(Value::as_i64);
                StoredValue {
                    canonical: CanonicalValue::from_json(value).ok(),
                    create_time,
                }
            }
            Err(_) => StoredValue {
                canonical: None,
                create_time: None,
            },
        }
    }
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_and_key_order_do_not_matter() {
        let a = CanonicalValue::from_json(json!({"b": 1, "a": {"y": 2, "x": [ {"q":1,"p":2} ]}}))
            .unwrap();
        let stored = StoredValue::parse(
            br#"{"a":{"x":[{"p":2,"q":1}],"y":2},"create_time":10,"update_time":20,"b":1}"#,
        );
        assert_eq!(stored.canonical.as_ref(), Some(&a));
        assert_eq!(stored.create_time, Some(10));
        assert_eq!(a.as_bytes(), br#"{"a":{"x":[{"p":2,"q":1}],"y":2},"b":1}"#);
    }

    #[test]
    fn stamping_adds_both_times() {
        let v = CanonicalValue::from_json(json!({"id": "r1"})).unwrap();
        assert_eq!(
            v.stamped(5, 7),
            br#"{"create_time":5,"id":"r1","update_time":7}"#.to_vec()
        );
        assert_eq!(StoredValue::parse(&v.stamped(5, 7)).canonical, Some(v));
    }

    #[test]
    fn non_objects_are_not_values() {
        assert!(CanonicalValue::from_json(json!([1])).is_err());
        assert_eq!(StoredValue::parse(b"init_dir").canonical, None);
        assert_eq!(StoredValue::parse(b"[]").canonical, None);
    }
}
