//! Admission review: each refusal names the field, missing inputs are
//! warnings, objects not ours are admitted unread, and an update that does
//! not break anything is admitted.

use serde_json::{Value, json};

use super::{ClusterIndex, Completeness, Review};
use crate::fixtures::*;
use crate::model::{AnyObject, Kind, TranslateConfig, UnitKey};
use crate::registry;

fn index() -> ClusterIndex {
    let mut config = config();
    config.schemas = Some(shipped_schemas());
    let mut index = ClusterIndex::new(config);
    index.apply::<IngressClassKind>(mk_class(
        "apisix",
        TranslateConfig::DEFAULT_CONTROLLER_NAME,
        false,
    ));
    index.apply::<ServiceKind>(mk_service(
        "ns",
        "web",
        json!([{"name": "http", "port": 80}]),
    ));
    index.flush();
    index
}

fn decoded(manifest: Value) -> (&'static dyn Kind, AnyObject) {
    let kind = registry::kind_of_manifest(
        manifest["apiVersion"].as_str().unwrap(),
        manifest["kind"].as_str().unwrap(),
    )
    .unwrap();
    (kind, kind.decode(manifest).unwrap())
}

fn review(index: &ClusterIndex, manifest: Value) -> Review {
    let (kind, object) = decoded(manifest);
    index.review(kind, &object, None, Completeness::Synced)
}

fn route(http: Value) -> Value {
    json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"namespace": "ns", "name": "r"},
        "spec": {"ingressClassName": "apisix", "http": http},
    })
}

fn rule(name: &str, plugins: Value) -> Value {
    json!({
        "name": name,
        "match": {"paths": ["/api/*"]},
        "backends": [{"serviceName": "web", "servicePort": 80}],
        "plugins": plugins,
    })
}

fn ingress(name: &str, annotations: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": "ns", "name": name, "annotations": annotations},
        "spec": spec,
    })
}

fn ingress_spec(path: &str, path_type: &str) -> Value {
    let mut spec = simple_spec(path, path_type);
    spec["ingressClassName"] = json!("apisix");
    spec
}

fn refused_field(review: &Review) -> (&str, &str) {
    match review {
        Review::Refused { field, reason } => (field.as_deref().unwrap_or("(none)"), reason),
        admitted => panic!("admitted: {admitted:?}"),
    }
}

#[test]
fn refusals_name_the_field_and_the_reason() {
    let index = index();
    let bad_plugin = json!([{"name": "limit-count", "enable": true, "config": {"count": 5, "time_window": 60, "rejected_code": 99}}]);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "bad plugin config",
            route(json!([rule("a", json!([])), rule("b", bad_plugin)])),
            "spec.http[1].plugins[0]",
            "plugin limit-count",
        ),
        (
            "unknown plugin",
            route(json!([rule(
                "a",
                json!([{"name": "no-such-plugin", "enable": true}])
            )])),
            "spec.http[0].plugins[0]",
            "not loaded",
        ),
        (
            "rule name twice",
            route(json!([rule("a", json!([])), rule("a", json!([]))])),
            "spec.http[1].name",
            "used twice",
        ),
        (
            "bad annotation",
            ingress(
                "i",
                json!({"k8s.apisix.apache.org/use-regex": "yes"}),
                ingress_spec("/", "Prefix"),
            ),
            "metadata.annotations[k8s.apisix.apache.org/use-regex]",
            "yes",
        ),
        (
            "bad regex",
            ingress(
                "i",
                json!({"k8s.apisix.apache.org/use-regex": "true"}),
                ingress_spec("/api/(unclosed", "ImplementationSpecific"),
            ),
            "spec.rules[0].http.paths[0]",
            "not a valid regular expression",
        ),
    ];
    for (case, manifest, field, reason) in cases {
        let verdict = review(&index, manifest);
        let (got_field, got_reason) = refused_field(&verdict);
        assert_eq!(got_field, field, "{case}: {verdict:?}");
        assert!(got_reason.contains(reason), "{case}: {got_reason}");
        let unit = UnitKey::new("ApisixRoute", Some("ns"), "r");
        assert!(verdict.message(&unit).unwrap().contains(field), "{case}");
    }
}

#[test]
fn missing_inputs_are_warnings_and_good_objects_are_admitted() {
    let index = index();
    let mut spec = ingress_spec("/", "Prefix");
    spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("later");
    match review(&index, ingress("i", json!({}), spec)) {
        Review::Admitted { warnings } => {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("ns/later"), "{warnings:?}");
            assert!(
                warnings[0].contains("spec.rules[0].http.paths[0]"),
                "{warnings:?}"
            );
        }
        refused => panic!("{refused:?}"),
    }
    let good = route(json!([rule(
        "a",
        json!([{"name": "limit-count", "enable": true, "config": {"count": 5, "time_window": 60}}])
    )]));
    assert_eq!(review(&index, good), Review::Admitted { warnings: vec![] });
}

#[test]
fn objects_of_other_classes_are_admitted_unread() {
    let index = index();
    let mut spec = ingress_spec("/", "Prefix");
    spec["ingressClassName"] = json!("nginx");
    let broken = ingress("i", json!({"k8s.apisix.apache.org/use-regex": "yes"}), spec);
    assert_eq!(
        review(&index, broken),
        Review::Admitted { warnings: vec![] }
    );
}

#[test]
fn an_update_refused_only_when_it_breaks_something() {
    let index = index();
    let broken = ingress(
        "i",
        json!({"k8s.apisix.apache.org/use-regex": "yes"}),
        ingress_spec("/", "Prefix"),
    );
    let good = ingress("i", json!({}), ingress_spec("/", "Prefix"));
    let (kind, broken_object) = decoded(broken.clone());
    let (_, good_object) = decoded(good);
    // Breaking a working object: refused.
    let verdict = index.review(
        kind,
        &broken_object,
        Some(&good_object),
        Completeness::Synced,
    );
    assert!(matches!(verdict, Review::Refused { .. }), "{verdict:?}");
    // A label added to an object that was already broken the same way:
    // admitted with a warning (finalizers and labels must stay editable).
    let mut relabelled = broken;
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    let (_, relabelled) = decoded(relabelled);
    match index.review(
        kind,
        &relabelled,
        Some(&broken_object),
        Completeness::Synced,
    ) {
        Review::Admitted { warnings } => assert!(warnings[0].contains("use-regex"), "{warnings:?}"),
        refused => panic!("{refused:?}"),
    }
}

#[test]
fn a_host_served_with_another_certificate_is_refused() {
    let mut index = index();
    let (cert_a, key_a) = test_cert();
    let (cert_b, key_b) = test_cert();
    index.apply::<SecretKind>(mk_tls_secret("ns", "a-tls", &cert_a, &key_a));
    index.apply::<SecretKind>(mk_tls_secret("ns", "b-tls", &cert_b, &key_b));
    let with_tls = |name: &str, secret: &str| {
        let mut spec = ingress_spec("/", "Prefix");
        spec["tls"] = json!([{"hosts": ["example.com"], "secretName": secret}]);
        ingress(name, json!({}), spec)
    };
    let (kind, first) = decoded(with_tls("first", "a-tls"));
    index.apply_object(kind, kind.key_of(&first), first);
    index.flush();
    // The same certificate for the same host (two Ingresses of one site).
    assert!(matches!(
        review(&index, with_tls("same", "a-tls")),
        Review::Admitted { .. }
    ));
    let verdict = review(&index, with_tls("other", "b-tls"));
    let (field, reason) = refused_field(&verdict);
    assert_eq!(field, "spec.tls");
    assert!(
        reason.contains("example.com") && reason.contains("Ingress/ns/first"),
        "{reason}"
    );
    // An ApisixTls for that host with the other certificate too.
    let tls = json!({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixTls",
        "metadata": {"namespace": "ns", "name": "t"},
        "spec": {"ingressClassName": "apisix", "hosts": ["EXAMPLE.com"], "secret": {"namespace": "ns", "name": "b-tls"}},
    });
    assert_eq!(refused_field(&review(&index, tls)).0, "spec.hosts");
    // Re-applying the first Ingress itself conflicts with nothing.
    assert!(matches!(
        review(&index, with_tls("first", "a-tls")),
        Review::Admitted { .. }
    ));
}

#[test]
fn while_loading_only_the_object_itself_is_checked() {
    let index = index();
    let (kind, object) = decoded(route(json!([rule("a", json!([]))])));
    match index.review(kind, &object, None, Completeness::Loading) {
        Review::Admitted { warnings } => assert!(warnings[0].contains("loading"), "{warnings:?}"),
        refused => panic!("{refused:?}"),
    }
}
