//! Reading the test API server's audit log: which requests a user (seen
//! through impersonation, as the tests run the operator) made, so a test can
//! tell a permission that is used from one that is only granted.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::TestEnvError;

/// One kind of request: verb, API group ("" for core), resource (with
/// `/subresource`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
}

/// What `user` did, split into requests that were allowed and those that
/// were refused (403).
#[derive(Debug, Default)]
pub struct Accesses {
    pub allowed: BTreeSet<Access>,
    pub forbidden: BTreeSet<Access>,
}

/// The accesses of `user`, who reached the API server by impersonation.
pub fn accesses_of(log: &Path, user: &str) -> Result<Accesses, TestEnvError> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| TestEnvError::io(format!("reading {}", log.display()), e))?;
    let mut accesses = Accesses::default();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue; // a line being written
        };
        if event["impersonatedUser"]["username"] != user {
            continue;
        }
        let object = &event["objectRef"];
        let Some(resource) = object["resource"].as_str() else {
            continue; // discovery and other non-resource URLs
        };
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let access = Access {
            verb: event["verb"].as_str().unwrap_or_default().to_string(),
            group: object["apiGroup"].as_str().unwrap_or_default().to_string(),
            resource,
        };
        if event["responseStatus"]["code"] == 403 {
            accesses.forbidden.insert(access);
        } else {
            accesses.allowed.insert(access);
        }
    }
    Ok(accesses)
}

/// Whether RBAC lets `user` (a ServiceAccount) do `verb` on `resource`
/// (`group/resource`, or `resource` for the core group) in `namespace`, as
/// a SubjectAccessReview answers.
pub async fn allowed(
    client: &kube::Client,
    user: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> Result<bool, kube::Error> {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let (group, resource) = resource.split_once('/').unwrap_or(("", resource));
    let review: SubjectAccessReview = serde_json::from_value(serde_json::json!({
        "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                        "namespace": namespace}}
    }))
    .expect("a valid SubjectAccessReview");
    let answer = kube::Api::<SubjectAccessReview>::all(client.clone())
        .create(&Default::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Every (verb, group, resource) an RBAC role's `rules` grant.
pub fn granted(rules: &Value) -> BTreeSet<Access> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut out = BTreeSet::new();
    for rule in rules.as_array().into_iter().flatten() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert(Access {
                        verb,
                        group: group.clone(),
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_impersonated_requests_and_expands_rules() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let lines = [
            json!({"verb": "list", "impersonatedUser": {"username": "sa"},
                   "objectRef": {"resource": "pods", "apiGroup": ""},
                   "responseStatus": {"code": 200}}),
            json!({"verb": "patch", "impersonatedUser": {"username": "sa"},
                   "objectRef": {"resource": "ingresses", "subresource": "status", "apiGroup": "networking.k8s.io"},
                   "responseStatus": {"code": 200}}),
            json!({"verb": "list", "impersonatedUser": {"username": "sa"},
                   "objectRef": {"resource": "namespaces", "apiGroup": ""},
                   "responseStatus": {"code": 403}}),
            json!({"verb": "delete", "user": {"username": "admin"},
                   "objectRef": {"resource": "pods"}, "responseStatus": {"code": 200}}),
        ];
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        std::fs::write(&log, text.join("\n") + "\n{\"partial").unwrap();
        let accesses = accesses_of(&log, "sa").unwrap();
        let access = |verb: &str, group: &str, resource: &str| Access {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
        };
        assert_eq!(
            accesses.allowed,
            BTreeSet::from([
                access("list", "", "pods"),
                access("patch", "networking.k8s.io", "ingresses/status")
            ])
        );
        assert_eq!(
            accesses.forbidden,
            BTreeSet::from([access("list", "", "namespaces")])
        );
        let rules = json!([{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["list", "watch"]}]);
        assert_eq!(granted(&rules).len(), 4);
    }
}
