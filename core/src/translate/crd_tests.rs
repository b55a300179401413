//! Translation of the simpler APISIX CRDs: ApisixTls, ApisixPluginConfig,
//! ApisixGlobalRule, ApisixClusterConfig and ApisixConsumer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{TranslateError, TranslateInput, Translation, apisix_tls, consumer, plugin_sets};
use crate::api::{
    ApisixClusterConfig, ApisixConsumer, ApisixGlobalRule, ApisixPluginConfig, ApisixTls,
};
use crate::fixtures::*;
use crate::model::{Dependency, ObjectKey, Snapshot, SourceKind};

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
    snapshot.apply::<SecretKind>(mk_tls_secret("ns", "site", &cert, &key));
    snapshot.apply::<SecretKind>(secret("ca", json!({"ca.crt": cert})));
    snapshot.apply::<SecretKind>(secret(
        "limits",
        json!({"count": "5", "redis.password": "pw"}),
    ));
    snapshot.apply::<SecretKind>(secret("jack-key", json!({"key": "jack-secret-key"})));
    snapshot.apply::<SecretKind>(secret(
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
    assert!(translation.deps.contains(&Dependency::object(
        SecretKind::KIND,
        ObjectKey::new("ns", "ca")
    )));
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
    {
        let schemas = shipped_schemas();
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
    {
        let report =
            apisix_operator_testenv::apisix_schema::validate(&merged.into_inner(), "/apisix")
                .unwrap();
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

fn route_snapshot() -> Snapshot {
    use crate::fixtures::{mk_service, mk_slice};
    let mut snapshot = snapshot();
    let mut web = mk_service("ns", "web", json!([{"name": "http", "port": 80}]));
    web.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.10".into());
    snapshot.apply::<ServiceKind>(web);
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[("10.1.0.1", None, None, None)],
    ));
    snapshot.apply::<ServiceKind>(mk_service(
        "ns",
        "canary",
        json!([{"name": "http", "port": 80}]),
    ));
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "canary-1",
        "canary",
        json!([{"name": "http", "port": 8080}]),
        &[("10.1.0.2", None, None, None)],
    ));
    snapshot.apply::<ServiceKind>(mk_service(
        "ns",
        "db",
        json!([{"name": "pg", "port": 5432}]),
    ));
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "db-1",
        "db",
        json!([{"name": "pg", "port": 5432}]),
        &[("10.1.0.3", None, None, None)],
    ));
    snapshot.apply::<ApisixUpstreamKind>(object("ApisixUpstream", "web", json!({
        "loadbalancer": {"type": "chash", "hashOn": "header", "key": "x-user"},
        "retries": 2,
        "timeout": {"connect": "2s"},
        "healthCheck": {"active": {"httpPath": "/healthz", "healthy": {"interval": "2s", "successes": 2}}},
        "portLevelSettings": [{"port": 80, "scheme": "http", "retries": 3}],
    })));
    snapshot.apply::<ApisixUpstreamKind>(object(
        "ApisixUpstream",
        "partner",
        json!({
            "externalNodes": [{"name": "api.partner.example", "type": "Domain"}], "scheme": "https",
        }),
    ));
    snapshot.apply::<ApisixPluginConfigKind>(crate::fixtures::mk_plugin_config("ns", "shared"));
    snapshot
}

#[test]
fn apisix_routes_become_routes_upstreams_and_stream_routes() {
    let config = config();
    let snapshot = route_snapshot();
    let route: crate::api::ApisixRoute = object(
        "ApisixRoute",
        "shop",
        json!({
            "http": [{
                "name": "canary",
                "priority": 5,
                "timeout": {"read": "30s"},
                "websocket": true,
                "match": {"paths": ["/api/*"], "hosts": ["shop.example.com"], "methods": ["GET"], "remoteAddrs": ["10.0.0.0/8"],
                    "exprs": [{"subject": {"scope": "Header", "name": "X-Canary"}, "op": "Equal", "value": "yes"},
                              {"subject": {"scope": "Query", "name": "v"}, "op": "NotIn", "set": ["1"]}]},
                "backends": [{"serviceName": "web", "servicePort": 80, "weight": 90}, {"serviceName": "canary", "servicePort": "http", "weight": 10}],
                "upstreams": [{"name": "partner", "weight": 5}],
                "plugins": [{"name": "cors"}],
                "authentication": {"enable": true, "type": "keyAuth", "keyAuth": {"header": "apikey"}},
                "plugin_config_name": "shared",
            }, {
                "name": "by-ip",
                "match": {"paths": ["/static/*"]},
                "backends": [{"serviceName": "web", "servicePort": 80, "resolveGranularity": "service"}],
            }],
            "stream": [{"name": "postgres", "protocol": "TCP", "match": {"ingressPort": 9432}, "backend": {"serviceName": "db", "servicePort": 5432}}],
        }),
    );
    let translation = super::apisix_route::translate(
        TranslateInput {
            config: &config,
            snapshot: &snapshot,
        },
        &route,
    );
    assert!(translation.deps.contains(&Dependency::object(
        ApisixUpstreamKind::KIND,
        ObjectKey::new("ns", "web")
    )));
    let values = values(translation).unwrap();
    let of = |dir: &str| -> Vec<&Value> {
        values
            .iter()
            .filter(|(k, _)| k.contains(&format!("/{dir}/")))
            .map(|(_, v)| v)
            .collect()
    };
    let routes = of("routes");
    let canary = routes
        .iter()
        .find(|r| r["name"] == "ns_shop_canary")
        .unwrap();
    assert_eq!(
        canary["vars"],
        json!([["http_x_canary", "==", "yes"], ["arg_v", "!", "in", ["1"]]])
    );
    assert_eq!(
        canary["timeout"],
        json!({"connect": 60.0, "send": 60.0, "read": 30.0})
    );
    assert_eq!(canary["enable_websocket"], true);
    assert_eq!(canary["plugins"]["key-auth"], json!({"header": "apikey"}));
    assert_eq!(
        canary["plugin_config_id"],
        plugin_sets::plugin_config_id(&config, "ns", "shared")
    );
    let split = &canary["plugins"]["traffic-split"]["rules"][0]["weighted_upstreams"];
    assert_eq!(split.as_array().unwrap().len(), 3);
    assert_eq!(split[2], json!({"weight": 90}));
    assert_eq!(split[1]["weight"], 5);
    let upstreams = of("upstreams");
    assert_eq!(
        upstreams.len(),
        5,
        "web, canary, web by service IP, partner, db"
    );
    let web = upstreams
        .iter()
        .find(|u| u["id"] == canary["upstream_id"])
        .unwrap();
    assert_eq!(web["type"], "chash");
    assert_eq!(web["retries"], 3, "the port-level setting wins");
    assert_eq!(
        web["checks"]["active"]["healthy"],
        json!({"interval": 2, "successes": 2})
    );
    assert_eq!(
        web["nodes"],
        json!([{"host": "10.1.0.1", "port": 8080, "weight": 100}])
    );
    let by_ip = routes
        .iter()
        .find(|r| r["name"] == "ns_shop_by-ip")
        .unwrap();
    let service_upstream = upstreams
        .iter()
        .find(|u| u["id"] == by_ip["upstream_id"])
        .unwrap();
    assert_eq!(
        service_upstream["nodes"],
        json!([{"host": "10.96.0.10", "port": 80, "weight": 100}])
    );
    let partner = upstreams
        .iter()
        .find(|u| u["name"] == "ns_partner")
        .unwrap();
    assert_eq!(
        partner["nodes"],
        json!([{"host": "api.partner.example", "port": 443, "weight": 100}])
    );
    let stream = &of("stream_routes")[0];
    assert_eq!(stream["server_port"], 9432);
    // With the plugin config it references, everything passes validate.py.
    let shared: ApisixPluginConfig = object(
        "ApisixPluginConfig",
        "shared",
        json!({"plugins": [{"name": "request-id"}]}),
    );
    let mut values = values.clone();
    values.extend(
        super::crd_tests::values(plugin_sets::translate_plugin_config(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &shared,
        ))
        .unwrap(),
    );
    {
        let report = apisix_operator_testenv::apisix_schema::validate(&values, "/apisix").unwrap();
        assert!(report.passed, "{}", report.output);
    }
}

#[test]
fn apisix_route_errors_are_clear() {
    let config = config();
    let snapshot = route_snapshot();
    let translate = |http: Value| {
        let route: crate::api::ApisixRoute = object("ApisixRoute", "r", json!({"http": http}));
        values(super::apisix_route::translate(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &route,
        ))
        .unwrap_err()
        .to_string()
    };
    let rule = |extra: Value| {
        let mut rule = json!({"name": "a", "match": {"paths": ["/"]}, "backends": [{"serviceName": "web", "servicePort": 80}]});
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!([rule])
    };
    assert!(
        translate(rule(json!({"plugin_config_name": "missing"})))
            .contains("ApisixPluginConfig ns/missing not found")
    );
    assert!(
        translate(rule(
            json!({"backends": [{"serviceName": "ghost", "servicePort": 80}]})
        ))
        .contains("ns/ghost: not found")
    );
    assert!(
        translate(rule(
            json!({"backends": [{"serviceName": "web", "servicePort": 80, "subset": "v2"}]})
        ))
        .contains("subset \"v2\" is not defined in ApisixUpstream ns/web")
    );
    assert!(
        translate(rule(json!({"upstreams": [{"name": "nope"}]})))
            .contains("ApisixUpstream ns/nope not found")
    );
    assert!(translate(json!([{"name": "a", "match": {"paths": ["/"]}, "plugins": [{"name": "echo"}]},
                              {"name": "a", "match": {"paths": ["/b"]}, "plugins": [{"name": "echo"}]}])).contains("used twice"));
}
