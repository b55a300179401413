//! Translation of the simpler APISIX CRDs: ApisixTls, ApisixPluginConfig,
//! ApisixGlobalRule, ApisixClusterConfig and ApisixConsumer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::tests::{config, mk_tls_secret, shared_schemas, test_cert};
use super::{TranslateError, TranslateInput, Translation, apisix_tls, consumer, plugin_sets};
use crate::api::{
    ApisixClusterConfig, ApisixConsumer, ApisixGlobalRule, ApisixPluginConfig, ApisixTls,
};
use crate::index::{Dependency, ObjectKey, Snapshot};

fn object<T: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> T {
    serde_json::from_value(json!({
        "apiVersion": "apisix.apache.org/v2", "kind": kind,
        "metadata": {"namespace": "ns", "name": name}, "spec": spec,
    }))
    .unwrap()
}

fn secret(name: &str, data: Value) -> k8s_openapi::api::core::v1::Secret {
    serde_json::from_value(
        json!({"metadata": {"namespace": "ns", "name": name}, "stringData": data}),
    )
    .unwrap()
}

fn values(translation: Translation) -> Result<BTreeMap<String, Value>, TranslateError> {
    translation.result.map(|out| {
        out.objects
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_json()))
            .collect()
    })
}

fn only(translation: Translation) -> Value {
    let values = values(translation).unwrap();
    assert_eq!(values.len(), 1, "{values:?}");
    values.into_values().next().unwrap()
}

fn snapshot() -> Snapshot {
    let (cert, key) = test_cert();
    let mut snapshot = Snapshot::default();
    snapshot.apply_secret(mk_tls_secret("ns", "site", &cert, &key));
    snapshot.apply_secret(secret("ca", json!({"ca.crt": cert})));
    snapshot.apply_secret(secret(
        "limits",
        json!({"count": "5", "redis.password": "pw"}),
    ));
    snapshot.apply_secret(secret("jack-key", json!({"key": "jack-secret-key"})));
    snapshot.apply_secret(secret(
        "jwt",
        json!({"key": "user", "secret": "s3cret", "exp": "0", "base64_secret": "false"}),
    ));
    snapshot
}

#[test]
fn apisix_tls_becomes_an_ssl_with_its_client_ca() {
    let config = config();
    let snapshot = snapshot();
    let tls: ApisixTls = object(
        "ApisixTls",
        "site",
        json!({
            "hosts": ["example.com", "*.example.com"], "secret": {"name": "site", "namespace": "ns"},
            "client": {"caSecret": {"name": "ca", "namespace": "ns"}, "depth": 2, "skip_mtls_uri_regex": ["^/health$"]},
        }),
    );
    let translation = apisix_tls::translate(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &tls,
    );
    assert!(
        translation
            .deps
            .contains(&Dependency::Secret(ObjectKey::new("ns", "ca")))
    );
    let ssl = only(translation);
    assert_eq!(ssl["snis"], json!(["example.com", "*.example.com"]));
    assert_eq!(ssl["client"]["depth"], 2);
    assert!(
        ssl["client"]["ca"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let missing: ApisixTls = object(
        "ApisixTls",
        "x",
        json!({"hosts": ["a.com"], "secret": {"name": "nope", "namespace": "ns"}}),
    );
    let err = values(apisix_tls::translate(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &missing,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("ns/nope: not found"), "{err}");
}

#[test]
fn plugin_configs_merge_secret_refs_and_skip_disabled_plugins() {
    let config = config();
    let snapshot = snapshot();
    let pc: ApisixPluginConfig = object(
        "ApisixPluginConfig",
        "shared",
        json!({"plugins": [
            {"name": "limit-count", "config": {"count": 10, "time_window": 60}, "secretRef": "limits"},
            {"name": "echo", "enable": false, "config": {"body": "x"}},
        ]}),
    );
    let value = only(plugin_sets::translate_plugin_config(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &pc,
    ));
    assert_eq!(
        value["id"],
        plugin_sets::plugin_config_id(&config, "ns", "shared")
    );
    assert_eq!(
        value["plugins"],
        json!({"limit-count": {"count": "5", "time_window": 60, "redis": {"password": "pw"}}})
    );
    let missing: ApisixPluginConfig = object(
        "ApisixPluginConfig",
        "m",
        json!({"plugins": [{"name": "echo", "secretRef": "nope"}]}),
    );
    assert!(
        values(plugin_sets::translate_plugin_config(
            TranslateInput {
                config: &config,
                snapshot: &snapshot
            },
            &missing
        ))
        .is_err()
    );
}

#[test]
fn global_rules_and_the_default_cluster_config() {
    let config = config();
    let snapshot = snapshot();
    let rule: ApisixGlobalRule = object(
        "ApisixGlobalRule",
        "everywhere",
        json!({"plugins": [{"name": "request-id"}]}),
    );
    let value = only(plugin_sets::translate_global_rule(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &rule,
    ));
    assert_eq!(value["plugins"], json!({"request-id": {}}));
    assert!(
        value.get("labels").is_none(),
        "global rules have no labels in APISIX"
    );
    let disabled: ApisixGlobalRule = object(
        "ApisixGlobalRule",
        "off",
        json!({"plugins": [{"name": "request-id", "enable": false}]}),
    );
    assert!(
        values(plugin_sets::translate_global_rule(
            TranslateInput {
                config: &config,
                snapshot: &snapshot
            },
            &disabled
        ))
        .is_err()
    );

    let cluster = |name: &str| -> ApisixClusterConfig {
        serde_json::from_value(json!({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixClusterConfig",
            "metadata": {"name": name}, "spec": {"monitoring": {"prometheus": {"enable": true, "prefer_name": true}, "skywalking": {"enable": false}}}}))
        .unwrap()
    };
    let value = only(plugin_sets::translate_cluster_config(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &cluster("default"),
    ));
    assert_eq!(
        value["plugins"],
        json!({"prometheus": {"prefer_name": true}})
    );
    assert!(
        values(plugin_sets::translate_cluster_config(
            TranslateInput {
                config: &config,
                snapshot: &snapshot
            },
            &cluster("other")
        ))
        .unwrap()
        .is_empty()
    );
}

#[test]
fn consumers_for_every_authentication_method() {
    let config = config();
    let snapshot = snapshot();
    let cases = [
        (
            json!({"keyAuth": {"value": {"key": "k1"}}}),
            "key-auth",
            json!({"key": "k1"}),
        ),
        (
            json!({"keyAuth": {"secretRef": {"name": "jack-key"}}}),
            "key-auth",
            json!({"key": "jack-secret-key"}),
        ),
        (
            json!({"basicAuth": {"value": {"username": "u", "password": "p"}}}),
            "basic-auth",
            json!({"username": "u", "password": "p"}),
        ),
        (
            json!({"jwtAuth": {"secretRef": {"name": "jwt"}}}),
            "jwt-auth",
            json!({"key": "user", "secret": "s3cret", "exp": 86400, "base64_secret": false}),
        ),
        (
            json!({"hmacAuth": {"value": {"access_key": "ak", "secret_key": "sk"}}}),
            "hmac-auth",
            json!({"key_id": "ak", "secret_key": "sk"}),
        ),
        (
            json!({"ldapAuth": {"value": {"user_dn": "cn=u,dc=example"}}}),
            "ldap-auth",
            json!({"user_dn": "cn=u,dc=example"}),
        ),
        (
            json!({"wolfRBAC": {"value": {"appid": "app"}}}),
            "wolf-rbac",
            json!({"appid": "app"}),
        ),
    ];
    let merged: std::cell::RefCell<BTreeMap<String, Value>> = Default::default();
    for (i, (auth, plugin, expected)) in cases.into_iter().enumerate() {
        let name = format!("user-{i}");
        let object: ApisixConsumer =
            object("ApisixConsumer", &name, json!({"authParameter": auth}));
        let values = values(consumer::translate(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &object,
        ))
        .unwrap();
        let (key, value) = values.iter().next().unwrap();
        assert_eq!(value["username"], format!("ao_test_ns_user-{i}"));
        assert!(key.ends_with(&format!("/consumers/ao_test_ns_user-{i}")));
        assert_eq!(value["plugins"][plugin], expected, "{plugin}");
        if plugin != "wolf-rbac" && plugin != "ldap-auth" {
            merged.borrow_mut().extend(values);
        }
    }
    // The auth plugins as generated pass APISIX's consumer schemas and validate.py.
    if let Some(schemas) = shared_schemas() {
        let mut checked = config.clone();
        checked.schemas = Some(schemas);
        let object: ApisixConsumer = object(
            "ApisixConsumer",
            "checked",
            json!({"authParameter": {"hmacAuth": {"value": {"access_key": "ak", "secret_key": "sk"}}}}),
        );
        values(consumer::translate(
            TranslateInput {
                config: &checked,
                snapshot: &snapshot,
            },
            &object,
        ))
        .unwrap();
    }
    if let Some(report) =
        apisix_operator_testenv::apisix_schema::validate(&merged.into_inner(), "/apisix").unwrap()
    {
        assert!(report.passed, "{}", report.output);
    }
}

#[test]
fn consumer_errors_are_clear() {
    let config = config();
    let snapshot = snapshot();
    let translate = |auth: Value| {
        let object: ApisixConsumer =
            object("ApisixConsumer", "bad", json!({"authParameter": auth}));
        values(consumer::translate(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &object,
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(
        translate(json!({"keyAuth": {"secretRef": {"name": "missing"}}}))
            .contains("ns/missing not found")
    );
    assert!(
        translate(json!({"basicAuth": {"secretRef": {"name": "jack-key"}}}))
            .contains("basicAuth needs username")
    );
    assert!(
        translate(
            json!({"hmacAuth": {"value": {"access_key": "a", "secret_key": "s", "clock_skew": 5}}})
        )
        .contains("route-level")
    );
    assert!(translate(json!({})).contains("no authentication method"));
}

#[test]
fn usernames_are_collision_free_and_fit_apisix() {
    let config = config();
    assert_ne!(
        consumer::username(&config, "a-b", "c"),
        consumer::username(&config, "a", "b-c")
    );
    assert_ne!(
        consumer::username(&config, "a", "b.c"),
        consumer::username(&config, "a", "b-c")
    );
    let long = consumer::username(
        &config,
        "a-very-long-namespace-name",
        "and-a-very-long-consumer-name-too",
    );
    assert!(long.len() <= 64 && long.starts_with("ao_test_c"), "{long}");
}
