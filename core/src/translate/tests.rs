//! Table-driven tests of Ingress translation: paths, hosts, precedence,
//! class selection, backends (ports, readiness, ExternalName, appProtocol),
//! TLS and every annotation; plus the index's incremental behaviour.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};

use super::{TranslateConfig, TranslateError, TranslateInput, ingress};
use crate::apisix::ApisixDir;
use crate::fixtures::*;

use crate::model::Snapshot;

/// A snapshot with our default class, Service `web` (port 80 named http →
/// pods on 8080) and its ready endpoints.
fn base_snapshot() -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.apply::<IngressClassKind>(mk_class(
        "apisix",
        TranslateConfig::DEFAULT_CONTROLLER_NAME,
        true,
    ));
    snapshot.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 80}]),
    ));
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[
            ("10.0.0.2", Some(true), None, None),
            ("10.0.0.1", None, None, None),
        ],
    ));
    snapshot
}

fn run(snapshot: &Snapshot, ingress: &Ingress) -> Result<BTreeMap<String, Value>, TranslateError> {
    let config = config();
    let translation = ingress::translate(
        TranslateInput {
            config: &config,
            snapshot,
        },
        ingress,
    );
    translation.result.map(|objects| {
        objects
            .objects
            .into_iter()
            .map(|(key, value)| (key.as_str().to_string(), value.to_json()))
            .collect()
    })
}

fn of_dir(objects: &BTreeMap<String, Value>, dir: ApisixDir) -> Vec<Value> {
    objects
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("/apisix/{}/", dir.as_str())))
        .map(|(_, v)| v.clone())
        .collect()
}

fn routes(objects: &BTreeMap<String, Value>) -> Vec<Value> {
    let mut routes = of_dir(objects, ApisixDir::Routes);
    routes.sort_by_key(|r| std::cmp::Reverse(r["priority"].as_i64()));
    routes
}

#[test]
fn path_types_become_uris() {
    let cases = [
        ("/foo", "Exact", json!(["/foo"])),
        ("/foo", "Prefix", json!(["/foo", "/foo/*"])),
        ("/foo/", "Prefix", json!(["/foo", "/foo/*"])),
        ("/", "Prefix", json!(["/*"])),
        ("/foo", "ImplementationSpecific", json!(["/foo"])),
    ];
    for (path, path_type, uris) in cases {
        let ing = mk_ingress("ns", "i", json!({}), simple_spec(path, path_type));
        let out = run(&base_snapshot(), &ing).unwrap();
        let route = &routes(&out)[0];
        assert_eq!(route["uris"], uris, "{path} {path_type}");
        assert_eq!(route["host"], "example.com");
        assert_eq!(route["labels"]["managed-by"], "apisix-operator");
    }
}

#[test]
fn regex_paths_need_the_annotation_and_a_valid_expression() {
    let ing = mk_ingress(
        "ns",
        "i",
        json!({"k8s.apisix.apache.org/use-regex": "true"}),
        simple_spec("/api/v[0-9]+/.*", "ImplementationSpecific"),
    );
    let route = &routes(&run(&base_snapshot(), &ing).unwrap())[0];
    assert_eq!(route["uris"], json!(["/*"]));
    assert_eq!(route["vars"], json!([["uri", "~~", "/api/v[0-9]+/.*"]]));
    let bad = mk_ingress(
        "ns",
        "i",
        json!({"k8s.apisix.apache.org/use-regex": "true"}),
        simple_spec("/api/(", "ImplementationSpecific"),
    );
    assert!(
        matches!(run(&base_snapshot(), &bad).map_err(|e| e.cause().clone()), Err(TranslateError::Invalid(m)) if m.contains("regular expression"))
    );
}

#[test]
fn precedence_exact_then_longer_prefix_then_regex_then_default() {
    let spec = json!({
        "defaultBackend": backend(json!({"number": 80})),
        "rules": [{"host": "*.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend(json!({"number": 80}))},
            {"path": "/a/b", "pathType": "Prefix", "backend": backend(json!({"number": 80}))},
            {"path": "/a", "pathType": "Exact", "backend": backend(json!({"number": 80}))},
            {"path": "/a", "pathType": "Prefix", "backend": backend(json!({"number": 80}))},
        ]}}],
    });
    let out = run(&base_snapshot(), &mk_ingress("ns", "i", json!({}), spec)).unwrap();
    let order: Vec<Value> = routes(&out).iter().map(|r| r["uris"].clone()).collect();
    assert_eq!(
        order,
        vec![
            json!(["/a"]),
            json!(["/a/b", "/a/b/*"]),
            json!(["/a", "/a/*"]),
            json!(["/*"]),
            json!(["/*"]),
        ]
    );
    let default = routes(&out).pop().unwrap();
    assert_eq!(default["priority"], 0);
    assert!(default.get("host").is_none());
    assert_eq!(routes(&out)[0]["host"], "*.example.com");
    // One upstream for the one Service port, shared by every route.
    assert_eq!(of_dir(&out, ApisixDir::Upstreams).len(), 1);
}

#[test]
fn invalid_hosts_are_errors() {
    let mut spec = simple_spec("/", "Prefix");
    spec["rules"][0]["host"] = json!("bad host!");
    assert!(run(&base_snapshot(), &mk_ingress("ns", "i", json!({}), spec)).is_err());
}

#[test]
fn class_selection() {
    let ours = TranslateConfig::DEFAULT_CONTROLLER_NAME;
    let mut with_default = Snapshot::default();
    with_default.apply::<IngressClassKind>(mk_class("apisix", ours, true));
    with_default.apply::<IngressClassKind>(mk_class("nginx", "k8s.io/ingress-nginx", false));
    let mut without_default = Snapshot::default();
    without_default.apply::<IngressClassKind>(mk_class("mine", ours, false));
    let cases: [(&Snapshot, Value, Value, bool); 7] = [
        (&with_default, json!("apisix"), json!({}), true),
        (&with_default, json!("nginx"), json!({}), false),
        (&with_default, json!("missing"), json!({}), false),
        (&with_default, Value::Null, json!({}), true),
        (&without_default, Value::Null, json!({}), false),
        (
            &without_default,
            Value::Null,
            json!({"kubernetes.io/ingress.class": "apisix"}),
            true,
        ),
        (
            &without_default,
            Value::Null,
            json!({"kubernetes.io/ingress.class": "nginx"}),
            false,
        ),
    ];
    for (snapshot, class_name, annotations, selected) in cases {
        let config = config();
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "i", "annotations": annotations},
            "spec": {"ingressClassName": class_name, "rules": []},
        }))
        .unwrap();
        assert_eq!(
            super::class::selects(&config, snapshot, &ing),
            selected,
            "{class_name} {annotations}"
        );
    }
}

#[test]
fn backends_resolve_ports_by_name_and_keep_ready_endpoints() {
    let mut snapshot = base_snapshot();
    snapshot.apply::<ServiceKind>(mk_service(
        "ns",
        "multi",
        json!([{"name": "http", "port": 80}, {"name": "admin", "port": 9000, "appProtocol": "https"}]),
    ));
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "multi-1",
        "multi",
        json!([{"name": "http", "port": 8080}, {"name": "admin", "port": 9443}]),
        &[
            ("10.1.0.1", Some(true), Some(true), Some(false)),
            ("10.1.0.2", Some(false), Some(false), Some(false)),
            ("10.1.0.3", None, None, None),
        ],
    ));
    let spec = json!({"rules": [{"http": {"paths": [
        {"path": "/admin", "pathType": "Prefix", "backend": {"service": {"name": "multi", "port": {"name": "admin"}}}},
    ]}}]});
    let out = run(&snapshot, &mk_ingress("ns", "i", json!({}), spec)).unwrap();
    let upstream = &of_dir(&out, ApisixDir::Upstreams)[0];
    assert_eq!(
        upstream["nodes"],
        json!([{"host": "10.1.0.1", "port": 9443, "weight": 100}, {"host": "10.1.0.3", "port": 9443, "weight": 100}])
    );
    assert_eq!(upstream["scheme"], "https");
    assert_eq!(
        upstream["timeout"],
        json!({"connect": 60.0, "send": 60.0, "read": 60.0})
    );

    let unknown = json!({"rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "multi", "port": {"name": "nope"}}}},
    ]}}]});
    let err = run(&snapshot, &mk_ingress("ns", "i", json!({}), unknown)).unwrap_err();
    assert!(err.to_string().contains("no port named \"nope\""), "{err}");
    let missing = json!({"rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "ghost", "port": {"number": 80}}}},
    ]}}]});
    let err = run(&snapshot, &mk_ingress("ns", "i", json!({}), missing)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.rules[0].http.paths[0]: backend service ns/ghost: not found"
    );
    assert_eq!(err.missing_object(), Some(("Service", "ns/ghost")));
}

#[test]
fn terminating_endpoints_serve_only_when_none_is_ready() {
    let mut snapshot = base_snapshot();
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[
            ("10.0.0.5", Some(false), Some(true), Some(true)),
            ("10.0.0.6", Some(false), Some(false), Some(true)),
        ],
    ));
    let out = run(
        &snapshot,
        &mk_ingress("ns", "i", json!({}), simple_spec("/", "Prefix")),
    )
    .unwrap();
    assert_eq!(
        of_dir(&out, ApisixDir::Upstreams)[0]["nodes"],
        json!([{"host": "10.0.0.5", "port": 8080, "weight": 100}])
    );
    // With nothing serving at all, the upstream has no nodes (APISIX answers 502).
    snapshot.apply::<EndpointSliceKind>(mk_slice(
        "ns",
        "web-1",
        "web",
        json!([{"name": "http", "port": 8080}]),
        &[],
    ));
    let out = run(
        &snapshot,
        &mk_ingress("ns", "i", json!({}), simple_spec("/", "Prefix")),
    )
    .unwrap();
    assert_eq!(of_dir(&out, ApisixDir::Upstreams)[0]["nodes"], json!([]));
}

#[test]
fn external_name_services_become_one_node() {
    let mut snapshot = base_snapshot();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "web"},
        "spec": {"type": "ExternalName", "externalName": "api.example.org", "ports": [{"name": "http", "port": 443, "appProtocol": "https"}]},
    }))
    .unwrap();
    snapshot.apply::<ServiceKind>(svc);
    let spec = json!({"rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend(json!({"number": 443}))},
    ]}}]});
    let out = run(&snapshot, &mk_ingress("ns", "i", json!({}), spec)).unwrap();
    let upstream = &of_dir(&out, ApisixDir::Upstreams)[0];
    assert_eq!(
        upstream["nodes"],
        json!([{"host": "api.example.org", "port": 443, "weight": 100}])
    );
    assert_eq!(upstream["scheme"], "https");
}

#[test]
fn tls_entries_become_ssls() {
    let (cert, key) = test_cert();
    let mut snapshot = base_snapshot();
    snapshot.apply::<SecretKind>(mk_tls_secret("ns", "site-tls", &cert, &key));
    let mut spec = simple_spec("/", "Prefix");
    spec["tls"] = json!([{"hosts": ["example.com", "*.example.com"], "secretName": "site-tls"}]);
    let out = run(&snapshot, &mk_ingress("ns", "i", json!({}), spec.clone())).unwrap();
    let ssl = &of_dir(&out, ApisixDir::Ssls)[0];
    assert_eq!(ssl["snis"], json!(["example.com", "*.example.com"]));
    assert_eq!(ssl["cert"], cert);
    assert_eq!(ssl["key"], key);

    let cases = [
        (
            json!([{"hosts": ["example.com"], "secretName": "missing"}]),
            "not found",
        ),
        (json!([{"secretName": "site-tls"}]), "lists no hosts"),
        (json!([{"hosts": ["example.com"]}]), "names no secretName"),
    ];
    for (tls, expected) in cases {
        spec["tls"] = tls;
        let err = run(&snapshot, &mk_ingress("ns", "i", json!({}), spec.clone())).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    snapshot.apply::<SecretKind>(mk_tls_secret("ns", "bad", "not a cert", &key));
    spec["tls"] = json!([{"hosts": ["example.com"], "secretName": "bad"}]);
    let err = run(&snapshot, &mk_ingress("ns", "i", json!({}), spec)).unwrap_err();
    assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");
}

/// (annotations, where to look in the route, expected value) for valid ones.
#[test]
fn each_annotation_has_its_reference_meaning() {
    let p = |name: &str| format!("k8s.apisix.apache.org/{name}");
    // (annotations, JSON pointer into the route, expected value)
    type Case<'a> = (Vec<(String, &'a str)>, &'a str, Value);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![(p("enable-websocket"), "true")],
            "/enable_websocket",
            json!(true),
        ),
        (
            vec![
                (p("enable-cors"), "true"),
                (p("cors-allow-origin"), "https://a.com"),
            ],
            "/plugins/cors",
            json!({"allow_origins": "https://a.com"}),
        ),
        (
            vec![(p("enable-csrf"), "true"), (p("csrf-key"), "s3cret")],
            "/plugins/csrf",
            json!({"key": "s3cret"}),
        ),
        (
            vec![(p("http-to-https"), "true")],
            "/plugins/redirect",
            json!({"http_to_https": true}),
        ),
        (
            vec![
                (p("http-redirect"), "/new"),
                (p("http-redirect-code"), "302"),
            ],
            "/plugins/redirect",
            json!({"uri": "/new", "ret_code": 302}),
        ),
        (
            vec![(p("rewrite-target"), "/v2")],
            "/plugins/proxy-rewrite",
            json!({"uri": "/v2"}),
        ),
        (
            vec![
                (p("rewrite-target-regex"), "^/a/(.*)"),
                (p("rewrite-target-regex-template"), "/b/$1"),
            ],
            "/plugins/proxy-rewrite",
            json!({"regex_uri": ["^/a/(.*)", "/b/$1"]}),
        ),
        (
            vec![
                (p("enable-response-rewrite"), "true"),
                (p("response-rewrite-status-code"), "418"),
                (p("response-rewrite-set-header"), "X-A: 1"),
                (p("response-rewrite-remove-header"), "Server"),
            ],
            "/plugins/response-rewrite",
            json!({"status_code": 418, "headers": {"set": {"X-A": "1"}, "remove": ["Server"]}}),
        ),
        (
            vec![(p("http-allow-methods"), "get, post")],
            "/plugins/fault-injection/abort/vars",
            json!([[["request_method", "!", "in", ["GET", "POST"]]]]),
        ),
        (
            vec![(p("http-block-methods"), "DELETE")],
            "/plugins/fault-injection/abort/vars",
            json!([[["request_method", "in", ["DELETE"]]]]),
        ),
        (
            vec![(p("allowlist-source-range"), "10.0.0.0/8, 192.168.1.1")],
            "/plugins/ip-restriction",
            json!({"whitelist": ["10.0.0.0/8", "192.168.1.1"]}),
        ),
        (
            vec![(p("blocklist-source-range"), "2001:db8::/32")],
            "/plugins/ip-restriction",
            json!({"blacklist": ["2001:db8::/32"]}),
        ),
        (
            vec![(p("auth-type"), "keyAuth")],
            "/plugins/key-auth",
            json!({}),
        ),
        (
            vec![(p("auth-type"), "basicAuth")],
            "/plugins/basic-auth",
            json!({}),
        ),
        (
            vec![
                (p("auth-uri"), "http://auth.svc/check"),
                (p("auth-ssl-verify"), "false"),
                (p("auth-request-headers"), "Authorization"),
            ],
            "/plugins/forward-auth",
            json!({"uri": "http://auth.svc/check", "ssl_verify": false, "request_headers": ["Authorization"]}),
        ),
    ];
    for (annotations, pointer, expected) in cases {
        let map: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let ing = mk_ingress("ns", "i", json!(map), simple_spec("/", "Prefix"));
        let out = run(&base_snapshot(), &ing).unwrap_or_else(|e| panic!("{map:?}: {e}"));
        // What we generate passes APISIX's own plugin schemas.
        {
            let schemas = shipped_schemas();
            let mut config = config();
            config.schemas = Some(schemas);
            let snapshot = base_snapshot();
            let checked = ingress::translate(
                TranslateInput {
                    config: &config,
                    snapshot: &snapshot,
                },
                &ing,
            );
            checked
                .result
                .unwrap_or_else(|e| panic!("{map:?} fails APISIX's schema: {e}"));
        }
        let route = &routes(&out)[0];
        assert_eq!(route.pointer(pointer), Some(&expected), "{map:?}: {route}");
    }
}

#[test]
fn upstream_annotations_shape_the_upstream() {
    let p = |name: &str| format!("k8s.apisix.apache.org/{name}");
    let annotations = json!({
        p("upstream-scheme"): "GRPCS",
        p("upstream-retries"): "3",
        p("upstream-connect-timeout"): "5s",
        p("upstream-read-timeout"): "2m",
        p("upstream-send-timeout"): "1.5",
    });
    let out = run(
        &base_snapshot(),
        &mk_ingress("ns", "i", annotations, simple_spec("/", "Prefix")),
    )
    .unwrap();
    let upstream = &of_dir(&out, ApisixDir::Upstreams)[0];
    assert_eq!(upstream["scheme"], "grpcs");
    assert_eq!(upstream["retries"], 3);
    let zero = json!({"k8s.apisix.apache.org/upstream-retries": "0"});
    let out = run(
        &base_snapshot(),
        &mk_ingress("ns", "i", zero, simple_spec("/", "Prefix")),
    )
    .unwrap();
    assert!(
        of_dir(&out, ApisixDir::Upstreams)[0]
            .get("retries")
            .is_none()
    );
    assert_eq!(
        upstream["timeout"],
        json!({"connect": 5.0, "read": 120.0, "send": 1.5})
    );
}

#[test]
fn invalid_annotation_values_are_errors_naming_the_annotation() {
    let cases = [
        ("use-regex", "yes"),
        ("enable-websocket", "1"),
        ("upstream-scheme", "ftp"),
        ("upstream-retries", "-1"),
        ("upstream-connect-timeout", "fast"),
        ("upstream-read-timeout", "0"),
        ("http-redirect-code", "200"),
        ("rewrite-target-regex", "(unclosed"),
        ("response-rewrite-status-code", "99"),
        ("http-allow-methods", "FETCH"),
        ("allowlist-source-range", "10.0.0.0/33"),
        ("blocklist-source-range", "not-an-ip"),
        ("auth-type", "jwtAuth"),
        ("auth-uri", "ftp://x"),
        ("enable-cors", "TRUE"),
        ("no-such-annotation", "x"),
    ];
    for (name, value) in cases {
        let mut annotations = json!({format!("k8s.apisix.apache.org/{name}"): value});
        // Give the dependent annotations their partner so the value under test is what fails.
        if name == "http-redirect-code" {
            annotations["k8s.apisix.apache.org/http-redirect"] = json!("/x");
        }
        if name == "rewrite-target-regex" {
            annotations["k8s.apisix.apache.org/rewrite-target-regex-template"] = json!("/$1");
        }
        if name == "response-rewrite-status-code" {
            annotations["k8s.apisix.apache.org/enable-response-rewrite"] = json!("true");
        }
        let err = run(
            &base_snapshot(),
            &mk_ingress("ns", "i", annotations, simple_spec("/", "Prefix")),
        )
        .unwrap_err();
        assert!(
            matches!(&err, TranslateError::Annotation { annotation, .. } if annotation.ends_with(name)),
            "{name}={value}: {err}"
        );
    }
    // Conflicting pairs.
    for (a, b) in [
        (("http-to-https", "true"), ("http-redirect", "/x")),
        (("rewrite-target", "/a"), ("rewrite-target-regex", "^/b")),
        (
            ("allowlist-source-range", "10.0.0.1"),
            ("blocklist-source-range", "10.0.0.2"),
        ),
        (("enable-csrf", "true"), ("enable-cors", "false")),
    ] {
        let annotations = json!({
            format!("k8s.apisix.apache.org/{}", a.0): a.1,
            format!("k8s.apisix.apache.org/{}", b.0): b.1,
        });
        assert!(
            run(
                &base_snapshot(),
                &mk_ingress("ns", "i", annotations, simple_spec("/", "Prefix"))
            )
            .is_err(),
            "{a:?} {b:?}"
        );
    }
}

#[test]
fn plugin_config_name_must_exist() {
    let annotations = json!({"k8s.apisix.apache.org/plugin-config-name": "shared"});
    let ing = mk_ingress("ns", "i", annotations, simple_spec("/", "Prefix"));
    let err = run(&base_snapshot(), &ing).unwrap_err();
    assert!(
        err.to_string()
            .contains("ApisixPluginConfig ns/shared not found"),
        "{err}"
    );
    let mut snapshot = base_snapshot();
    snapshot.apply::<ApisixPluginConfigKind>(mk_plugin_config("ns", "shared"));
    let route = &routes(&run(&snapshot, &ing).unwrap())[0];
    assert!(
        route["plugin_config_id"]
            .as_str()
            .unwrap()
            .starts_with("ao_test_p")
    );
}

#[test]
fn a_keyring_encrypts_ssl_keys_and_plugin_secret_fields_deterministically() {
    let (cert, key) = test_cert();
    let mut snapshot = base_snapshot();
    snapshot.apply::<SecretKind>(mk_tls_secret("ns", "site-tls", &cert, &key));
    let mut spec = simple_spec("/", "Prefix");
    spec["tls"] = json!([{"hosts": ["example.com"], "secretName": "site-tls"}]);
    let annotations = json!({
        "k8s.apisix.apache.org/enable-csrf": "true",
        "k8s.apisix.apache.org/csrf-key": "s3cret",
    });
    let ing = mk_ingress("ns", "i", annotations, spec);
    let keyring = crate::apisix::Keyring::new(&["edd1c9f0985e76a2".into()]).unwrap();
    let mut config = config();
    config.keyring = Some(keyring.clone());
    let translate = || {
        let translation = ingress::translate(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &ing,
        );
        translation.result.unwrap().objects
    };
    let first = translate();
    assert_eq!(first, translate(), "encryption must be deterministic");
    let value = |dir: ApisixDir| {
        first
            .iter()
            .find(|(k, _)| k.dir() == dir)
            .map(|(_, v)| v.to_json())
            .unwrap()
    };
    let ssl = value(ApisixDir::Ssls);
    assert_eq!(ssl["key"], keyring.encrypt(&key));
    assert_eq!(ssl["cert"], cert, "certificates are not secret");
    assert_eq!(
        value(ApisixDir::Routes)["plugins"]["csrf"]["key"],
        keyring.encrypt("s3cret")
    );
}

#[test]
fn with_a_schema_unknown_and_invalid_plugin_configurations_are_errors() {
    let schemas = crate::apisix::ApisixSchemas::from_value(
        "fixture",
        json!({"plugins": {"cors": {"schema": {"type": "object", "properties": {
            "allow_origins": {"type": "string", "pattern": "^(\\*|https?://.+)$"}}}}}}),
    )
    .unwrap();
    let mut config = config();
    config.schemas = Some(std::sync::Arc::new(schemas));
    let snapshot = base_snapshot();
    let translate = |annotations: Value| {
        let ing = mk_ingress("ns", "i", annotations, simple_spec("/", "Prefix"));
        ingress::translate(
            TranslateInput {
                config: &config,
                snapshot: &snapshot,
            },
            &ing,
        )
        .result
    };
    assert!(translate(json!({"k8s.apisix.apache.org/enable-cors": "true", "k8s.apisix.apache.org/cors-allow-origin": "https://a.com"})).is_ok());
    let invalid = translate(json!({"k8s.apisix.apache.org/enable-cors": "true", "k8s.apisix.apache.org/cors-allow-origin": "ftp://a"})).unwrap_err();
    assert!(
        matches!(
            invalid,
            TranslateError::Plugin(crate::apisix::PluginError::Invalid { .. })
        ),
        "{invalid}"
    );
    // This data plane does not load csrf: the Ingress would silently lose it.
    let unknown = translate(
        json!({"k8s.apisix.apache.org/enable-csrf": "true", "k8s.apisix.apache.org/csrf-key": "k"}),
    )
    .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "plugin csrf is not loaded on the APISIX data plane (not in its schema)"
    );
}
