//! Values as compared by the planner: compact JSON with sorted keys and
//! without the `create_time`/`update_time` stamps that the writer adds.
//!
//! Comparing canonical bytes (instead of parsed JSON) keeps planning over
//! 100k keys cheap: each stored value is canonicalised once, when it arrives.

use std::sync::Arc;

use serde_json::Value;

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
        // serde_json's map (without its `preserve_order` feature, which
        // nothing here enables) is a BTreeMap: every object serialises with
        // sorted keys already. A test below fails should that change.
        Ok(CanonicalValue(
            serde_json::to_vec(&Value::Object(map))
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
    ///
    /// The stamps are spliced in after the opening brace instead of parsing
    /// and serialising the value again (a cold sync stamps every key): key
    /// order means nothing to APISIX, and a stored value is canonicalised
    /// when read.
    pub fn stamped(&self, create_time: i64, update_time: i64) -> Vec<u8> {
        let rest = self
            .0
            .strip_prefix(b"{")
            .expect("canonical values are JSON objects");
        let stamps = format!("{{\"{CREATE_TIME}\":{create_time},\"{UPDATE_TIME}\":{update_time}");
        let mut bytes = Vec::with_capacity(stamps.len() + self.0.len() + 1);
        bytes.extend_from_slice(stamps.as_bytes());
        if rest != b"}" {
            bytes.push(b',');
        }
        bytes.extend_from_slice(rest);
        bytes
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
        let v = CanonicalValue::from_json(json!({"id": "r1", "labels": {"a": "b"}})).unwrap();
        let stamped = v.stamped(5, 7);
        assert_eq!(
            serde_json::from_slice::<Value>(&stamped).unwrap(),
            json!({"create_time": 5, "id": "r1", "labels": {"a": "b"}, "update_time": 7})
        );
        let stored = StoredValue::parse(&stamped);
        assert_eq!(stored.canonical, Some(v));
        assert_eq!(stored.create_time, Some(5));
        let empty = CanonicalValue::from_json(json!({})).unwrap();
        assert_eq!(
            empty.stamped(1, 2),
            br#"{"create_time":1,"update_time":2}"#.to_vec()
        );
        assert_eq!(
            StoredValue::parse(&empty.stamped(1, 2)).canonical,
            Some(empty)
        );
    }

    #[test]
    fn non_objects_are_not_values() {
        assert!(CanonicalValue::from_json(json!([1])).is_err());
        assert_eq!(StoredValue::parse(b"init_dir").canonical, None);
        assert_eq!(StoredValue::parse(b"[]").canonical, None);
    }
}
