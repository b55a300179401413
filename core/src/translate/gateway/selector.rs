//! Label selectors (`matchLabels` and `matchExpressions`), evaluated as the
//! API server evaluates them, for a listener's `allowedRoutes` namespaces.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether every expression's operator is one Kubernetes defines, with the
/// values it requires (In/NotIn need some, Exists/DoesNotExist none).
pub fn is_valid(selector: &LabelSelector) -> bool {
    selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        }
    })
}

/// Whether `labels` satisfy `selector` (an empty selector matches all).
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    exact
        && selector.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = selector(json!({
            "matchLabels": {"team": "shop"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "NotIn", "values": ["internal"]},
            ]
        }));
        assert!(is_valid(&s));
        assert!(matches(
            &s,
            Some(&labels(&[("team", "shop"), ("env", "prod")]))
        ));
        assert!(!matches(
            &s,
            Some(&labels(&[("team", "shop"), ("env", "dev")]))
        ));
        assert!(!matches(
            &s,
            Some(&labels(&[
                ("team", "shop"),
                ("env", "prod"),
                ("legacy", "1")
            ]))
        ));
        assert!(!matches(
            &s,
            Some(&labels(&[
                ("team", "shop"),
                ("env", "prod"),
                ("tier", "internal")
            ]))
        ));
        assert!(!matches(&s, None));
        let exists = selector(json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]}));
        assert!(matches(&exists, Some(&labels(&[("a", "")]))));
        assert!(
            matches(&selector(json!({})), None),
            "empty selects everything"
        );
    }

    #[test]
    fn invalid_operators_are_refused() {
        assert!(!is_valid(&selector(
            json!({"matchExpressions": [{"key": "a", "operator": "Like"}]})
        )));
        assert!(!is_valid(&selector(
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        )));
        assert!(!is_valid(&selector(
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        )));
    }
}
