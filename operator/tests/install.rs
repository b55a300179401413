//! The install artifacts of `deploy/`: the Helm chart lints and renders every
//! option into flags the operator accepts; the plain manifests (kustomize)
//! and the OLM bundle are what the chart renders; the validating webhook is
//! in each (the chart's, with operator-managed or cert-manager certificates;
//! OLM's, from the CSV's webhook definitions); the bundle passes the
//! operator framework's validation; and the API server accepts all of them
//! with server-side apply. (`install_run.rs` runs the operator as the
//! chart deploys it.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use apisix_operator::admission::CertSource;
use apisix_operator::cli::run::RunSettings;
use apisix_operator::cli::{Cli, Command};
use apisix_operator_testenv::install::{
    self, BUNDLE, CHART, InstallTools, NAMESPACE, parse_documents, render_chart, repo_root,
};
use apisix_operator_testenv::{CertificateAuthority, TestEnv, apply_all, audit, eventually};
use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const GENEROUS: Duration = Duration::from_secs(90);

/// Where OLM mounts a webhook's `tls.crt` and `tls.key` into the Deployment.
const OLM_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
/// The flags of operator-managed webhook certificates.
const MANAGED_CERT_FLAGS: [&str; 3] = [
    "--webhook-secret",
    "--webhook-configuration",
    "--webhook-hosts",
];

fn tools() -> InstallTools {
    InstallTools::locate().unwrap_or_else(|e| panic!("{e}"))
}

fn default_render() -> Vec<Value> {
    render_chart(&tools(), NAMESPACE, &json!({}), false).unwrap()
}

fn full_values_render() -> Vec<Value> {
    let file = repo_root().join(CHART).join("ci/full-values.yaml");
    let render = tools()
        .helm_template(&repo_root().join(CHART), "apisix-prod", &[file], false)
        .unwrap();
    parse_documents(&render, "the full-values render").unwrap()
}

fn container(objects: &[Value]) -> &Value {
    &install::of_kind(objects, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The value of `--name=value` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// What `apisix-operator <args>` runs with (the rendered command line as the
/// operator checks it).
fn run_settings(args: &[String]) -> RunSettings {
    let mut argv = vec!["apisix-operator".to_string()];
    argv.extend(args.iter().cloned());
    let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Run(run) = parsed.command else {
        panic!("the container runs `run`");
    };
    run.settings().unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

/// The object of `kind` named `name` in `objects`.
fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The rules of every `role_kind` bound (by a `binding_kind`) to the
/// Deployment's ServiceAccount, with the namespace they apply in (`None`:
/// cluster-wide).
fn bound_rules(
    objects: &[Value],
    role_kind: &str,
    binding_kind: &str,
) -> Vec<(Option<String>, Value)> {
    let deployment = install::of_kind(objects, "Deployment").unwrap();
    let sa = &deployment["spec"]["template"]["spec"]["serviceAccountName"];
    let namespace = &deployment["metadata"]["namespace"];
    objects
        .iter()
        .filter(|b| b["kind"] == binding_kind && b["roleRef"]["kind"] == role_kind)
        .filter(|b| {
            b["subjects"].as_array().unwrap().iter().any(|s| {
                s["kind"] == "ServiceAccount" && &s["name"] == sa && &s["namespace"] == namespace
            })
        })
        .flat_map(|b| {
            let role = named(objects, role_kind, b["roleRef"]["name"].as_str().unwrap());
            let scope = b["metadata"]["namespace"].as_str().map(str::to_string);
            role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |rule| (scope.clone(), rule.clone()))
        })
        .collect()
}

/// Whether the ServiceAccount's rules let it `verb` the `group`/`resource`
/// named `name` (`None`: a request without a name, like create) in
/// `namespace` (`None`: cluster-scoped), as RBAC decides.
fn grants(
    rules: &[(Option<String>, Value)],
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    rules.iter().any(|(scope, rule)| {
        let names = strings(&rule["resourceNames"]);
        (scope.is_none() || scope.as_deref() == namespace)
            && strings(&rule["verbs"]).contains(&verb)
            && strings(&rule["apiGroups"]).contains(&group)
            && strings(&rule["resources"]).contains(&resource)
            && (names.is_empty() || name.is_some_and(|n| names.contains(&n)))
    })
}

/// Every Role and ClusterRole rule bound to the ServiceAccount.
/// Whether `rules` let the operator keep its own webhook certificate:
/// create Secrets in the release namespace, patch its configuration.
fn grants_certificate_rbac(rules: &[(Option<String>, Value)]) -> bool {
    let secrets = grants(rules, "create", "", "secrets", Some(NAMESPACE), None);
    let configuration = grants(
        rules,
        "patch",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        None,
        Some("apisix-operator"),
    );
    secrets || configuration
}

fn all_bound_rules(objects: &[Value]) -> Vec<(Option<String>, Value)> {
    let mut rules = bound_rules(objects, "ClusterRole", "ClusterRoleBinding");
    rules.extend(bound_rules(objects, "Role", "RoleBinding"));
    rules
}

/// `1.0` and `1` are the same YAML number (kustomize writes the former as
/// the latter).
fn normalize_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Objects by (kind, namespace, name), for order-independent comparison.
fn keyed(objects: Vec<Value>) -> BTreeMap<(String, String, String), Value> {
    objects
        .into_iter()
        .map(normalize_numbers)
        .map(|o| {
            let key = (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (key, o)
        })
        .collect()
}

#[test]
fn the_derived_deploy_files_are_current() {
    let root = repo_root();
    let files = install::generated_files(&root, &tools()).unwrap();
    let stale = install::stale_files(&root, &files);
    assert!(
        stale.is_empty(),
        "stale (run `make deploy-manifests`): {stale:?}"
    );
    // The CRDs everywhere are the operator's own.
    let crds = std::fs::read_to_string(root.join("crds/apisix-operator-crds.yaml")).unwrap();
    assert_eq!(crds, apisix_operator::api::crds_yaml());
}

#[test]
fn helm_lint_accepts_the_chart_with_default_and_every_option() {
    let tools = tools();
    let chart = repo_root().join(CHART);
    for values in [None, Some(chart.join("ci/full-values.yaml"))] {
        let out = tools
            .helm_lint(&chart, values.as_deref())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn the_kustomize_base_is_the_charts_default_render() {
    let tools = tools();
    let root = repo_root();
    let kustomized = install::parse_documents(
        &tools
            .kustomize_build(&root.join("deploy/manifests"))
            .unwrap(),
        "kustomize build",
    )
    .unwrap();
    let mut chart = install::parse_documents(
        &tools
            .helm_template(&root.join(CHART), NAMESPACE, &[], true)
            .unwrap(),
        "helm template",
    )
    .unwrap();
    // Helm leaves the namespace to `--create-namespace`; the base creates it.
    chart.push(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/name": "apisix-operator"}},
    }));
    let (kustomized, chart) = (keyed(kustomized), keyed(chart));
    assert_eq!(
        kustomized.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>()
    );
    for (key, object) in &chart {
        assert_eq!(&kustomized[key], object, "{key:?} differs");
    }
    // The webhook is part of the base: its configuration cluster-scoped (no
    // namespace), calling the Service the base creates in its namespace.
    let key = |kind: &str, namespace: &str, name: &str| {
        (kind.to_string(), namespace.to_string(), name.to_string())
    };
    let configuration = &kustomized[&key("ValidatingWebhookConfiguration", "", "apisix-operator")];
    for webhook in configuration["webhooks"].as_array().unwrap() {
        let service = &webhook["clientConfig"]["service"];
        assert_eq!(service["namespace"], NAMESPACE);
        assert!(kustomized.contains_key(&key(
            "Service",
            NAMESPACE,
            service["name"].as_str().unwrap()
        )));
    }
}

#[test]
fn the_default_render_is_a_safe_three_replica_deployment() {
    let objects = default_render();
    let deployment = install::of_kind(&objects, "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    let container = container(&objects);
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    let env: Vec<&Value> = container["env"].as_array().unwrap().iter().collect();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert!(
            env.iter()
                .any(|e| e["name"] == name && e["valueFrom"]["fieldRef"]["fieldPath"] == field),
            "{name} from the downward API"
        );
    }
    assert_eq!(
        install::of_kind(&objects, "PodDisruptionBudget").unwrap()["spec"]["maxUnavailable"],
        1
    );
    assert!(!objects.iter().any(|o| o["kind"] == "ServiceMonitor"));

    // The operator accepts the rendered command line as it is.
    let mut argv = vec!["apisix-operator".to_string()];
    argv.extend(args(&objects));
    let Command::Run(run) = Cli::try_parse_from(&argv).unwrap().command else {
        panic!("the container runs `run`");
    };
    run.settings().unwrap();

    // Namespaces are read (Gateway listeners select route namespaces by
    // their labels), never written.
    let rules = install::of_kind(&objects, "ClusterRole").unwrap()["rules"].clone();
    let namespaces = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "namespaces")
        })
        .unwrap_or_else(|| panic!("no namespaces rule: {rules}"));
    assert_eq!(namespaces["verbs"], serde_json::json!(["list", "watch"]));
}

#[test]
fn every_option_renders_into_flags_files_and_secrets_the_operator_reads() {
    let objects = full_values_render();
    let args = args(&objects);
    let mut argv = vec!["apisix-operator".to_string()];
    argv.extend(args.iter().cloned());
    let parsed = Cli::try_parse_from(&argv);
    assert!(parsed.is_ok(), "{}", parsed.unwrap_err());
    for expected in [
        "--etcd-endpoints=https://etcd-0.apisix.svc:2379,https://etcd-1.apisix.svc:2379",
        "--prefix=/apisix-prod",
        "--cluster=prod-eu1",
        "--namespace-selector=apisix.apache.org/serve=true",
        "--ingress-status-address=192.0.2.10,2001:db8::10",
        "--etcd-ca-file=/etc/apisix-operator/etcd-tls/ca.crt",
        "--etcd-cert-file=/etc/apisix-operator/etcd-tls/tls.crt",
        "--etcd-key-file=/etc/apisix-operator/etcd-tls/tls.key",
        "--etcd-tls-server-name=etcd.apisix.svc",
        "--etcd-user=apisix-operator",
        "--etcd-password-file=/etc/apisix-operator/etcd-auth/password",
        "--apisix-schema=/etc/apisix-operator/apisix-schema/schema.json",
        "--webhook-listen-address=0.0.0.0:8443",
        "--webhook-cert-dir=/etc/apisix-operator/webhook-tls",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
    }
    let pod = &install::of_kind(&objects, "Deployment").unwrap()["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    let secret_of = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .map(|v| v["secret"]["secretName"].clone())
    };
    assert_eq!(secret_of("etcd-tls"), Some(json!("apisix-etcd-client")));
    assert_eq!(secret_of("etcd-auth"), Some(json!("apisix-etcd-password")));
    assert_eq!(
        secret_of("webhook-tls"),
        Some(json!("apisix-operator-webhook-tls"))
    );
    let container = container(&objects);
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "APISIX_OPERATOR_DATA_ENCRYPTION_KEYRING"
                && e["valueFrom"]["secretKeyRef"]["name"] == "apisix-keyring"),
        "the keyring comes from its Secret"
    );
    assert!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    let rules = install::of_kind(&objects, "ClusterRole").unwrap()["rules"].to_string();
    assert!(rules.contains("\"namespaces\""), "{rules}");
    let monitor = install::of_kind(&objects, "ServiceMonitor").unwrap();
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(
        install::of_kind(&objects, "IngressClass").unwrap()["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
}

/// The values that turn on what `ci/full-values.yaml` leaves off (it picks
/// the other side of four either-or settings; here the webhook's
/// certificate is the operator's own, the default).
fn alternative_values_render() -> Vec<Value> {
    let values = json!({"operator": {
        "namespaces": ["shop", "mall"],
        "ingressStatus": {"publishService": "apisix/apisix-gateway"},
        "apisix": {"controlUrl": "http://apisix-control.apisix.svc:9090"},
    }});
    render_chart(&tools(), NAMESPACE, &values, false).unwrap()
}

#[test]
fn every_run_setting_is_a_chart_value() {
    use clap::CommandFactory;
    let mut flags = BTreeSet::new();
    let mut env = BTreeSet::new();
    for objects in [full_values_render(), alternative_values_render()] {
        let mut argv = vec!["apisix-operator".to_string()];
        argv.extend(args(&objects));
        let parsed = Cli::try_parse_from(&argv);
        assert!(parsed.is_ok(), "{argv:?}: {}", parsed.unwrap_err());
        for arg in &argv[2..] {
            let flag = arg.trim_start_matches("--");
            flags.insert(flag.split('=').next().unwrap().to_string());
        }
        for var in container(&objects)["env"].as_array().unwrap() {
            env.insert(var["name"].as_str().unwrap().to_string());
        }
    }
    // Settings a pod gets another way than a value.
    let elsewhere = [
        "config",          // the values are the configuration
        "kubeconfig",      // in-cluster
        "lease-namespace", // POD_NAMESPACE: the release namespace, where the Role is
        "identity",        // POD_NAME
    ];
    let cli = Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let missing: Vec<&str> = run
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let var = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            let covered = long == "help"
                || flags.contains(long)
                || env.contains(var)
                || elsewhere.contains(&long);
            (!covered).then_some(long)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "run settings the chart cannot set: {missing:?}"
    );
    assert!(env.contains("POD_NAME") && env.contains("POD_NAMESPACE"));
}

#[test]
fn the_image_user_is_the_one_the_chart_runs_as() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let objects = default_render();
    let pod = &install::of_kind(&objects, "Deployment").unwrap()["spec"]["template"]["spec"];
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    let gid = pod["securityContext"]["runAsGroup"].as_u64().unwrap();
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("USER {uid}:{gid}")),
        "the Dockerfile's USER is numeric and equals the chart's runAsUser/runAsGroup"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/apisix-operator\"]"));
    assert_eq!(container(&objects)["args"][0], "run");
}

/// The chart's two webhooks: (APISIX custom resources, Ingresses).
fn chart_webhooks(objects: &[Value]) -> (&Value, &Value) {
    let configuration = install::of_kind(objects, "ValidatingWebhookConfiguration").unwrap();
    let webhooks = configuration["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 2, "{webhooks:?}");
    let of_group = |group: &str| {
        webhooks
            .iter()
            .find(|w| w["rules"][0]["apiGroups"] == json!([group]))
            .unwrap_or_else(|| panic!("a webhook for {group}"))
    };
    (of_group("apisix.apache.org"), of_group("networking.k8s.io"))
}

#[test]
fn the_webhook_reviews_the_apisix_resources_and_ingresses_never_their_status() {
    let objects = default_render();
    let configuration = install::of_kind(&objects, "ValidatingWebhookConfiguration").unwrap();
    assert_eq!(configuration["metadata"]["name"], "apisix-operator");
    assert!(
        configuration["metadata"]["namespace"].is_null(),
        "cluster-scoped"
    );
    assert!(
        configuration["metadata"]["annotations"].is_null(),
        "no CA injection without cert-manager"
    );
    let (crds_hook, ingress_hook) = chart_webhooks(&objects);

    // Every APISIX CRD, at its served version; Ingresses at v1.
    let crds = parse_documents(&apisix_operator::api::crds_yaml(), "the CRDs").unwrap();
    let plurals: BTreeSet<&str> = crds
        .iter()
        .map(|c| c["spec"]["names"]["plural"].as_str().unwrap())
        .collect();
    let versions: BTreeSet<&str> = crds
        .iter()
        .flat_map(|c| c["spec"]["versions"].as_array().unwrap())
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(plurals.len(), 7);
    let rule = &crds_hook["rules"][0];
    assert_eq!(
        strings(&rule["resources"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        plurals
    );
    assert_eq!(
        strings(&rule["apiVersions"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        versions
    );
    assert_eq!(crds_hook["failurePolicy"], "Fail");
    let rule = &ingress_hook["rules"][0];
    assert_eq!(rule["apiVersions"], json!(["v1"]));
    assert_eq!(rule["resources"], json!(["ingresses"]));
    // Ingresses of every class go through it: never blocked while no
    // replica is Ready.
    assert_eq!(ingress_hook["failurePolicy"], "Ignore");

    let mut names = BTreeSet::new();
    for webhook in [crds_hook, ingress_hook] {
        let name = webhook["name"].as_str().unwrap();
        assert!(names.insert(name));
        assert!(
            name.split('.').count() >= 3 && name.ends_with(".apisix.apache.org"),
            "{name}: a fully qualified name"
        );
        let rules = webhook["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["operations"], json!(["CREATE", "UPDATE"]));
        assert!(
            strings(&rules[0]["resources"])
                .iter()
                .all(|r| !r.contains('/')),
            "{name}: no subresource (the operator writes status): {rules:?}"
        );
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(webhook["matchPolicy"], "Equivalent");
        assert_eq!(webhook["timeoutSeconds"], 5);
        assert_eq!(
            webhook["namespaceSelector"],
            json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                         "operator": "NotIn", "values": ["kube-system"]}]})
        );
        // No caBundle: the leader sets it, and Helm upgrades leave a field
        // the chart never renders alone.
        assert_eq!(
            webhook["clientConfig"],
            json!({"service": {"name": "apisix-operator-webhook", "namespace": NAMESPACE,
                               "path": "/validate", "port": 443}}),
            "{name}"
        );
    }
}

#[test]
fn the_webhook_service_reaches_every_replica_and_the_operator_manages_the_certificate() {
    let objects = default_render();
    let (crds_hook, _) = chart_webhooks(&objects);
    let called = &crds_hook["clientConfig"]["service"];
    let service = named(&objects, "Service", called["name"].as_str().unwrap());
    assert_eq!(service["metadata"]["namespace"], called["namespace"]);
    let deployment = install::of_kind(&objects, "Deployment").unwrap();
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == called["port"])
        .unwrap();
    let container = container(&objects);
    let target = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .unwrap_or_else(|| panic!("a container port named {}", port["targetPort"]));
    assert_eq!(target["containerPort"], 9443);

    // The operator listens there, with the certificate it keeps in a Secret
    // for the names the API server calls the Service by.
    let args = args(&objects);
    assert_eq!(
        flag(&args, "--webhook-listen-address"),
        Some("0.0.0.0:9443")
    );
    assert_eq!(flag(&args, "--webhook-cert-dir"), None);
    let svc = format!("apisix-operator-webhook.{NAMESPACE}.svc");
    let webhook = run_settings(&args).webhook.expect("the webhook is on");
    assert_eq!(webhook.listen.port(), 9443);
    let CertSource::Managed(managed) = webhook.certs else {
        panic!("operator-managed certificates by default");
    };
    assert_eq!(managed.secret, "apisix-operator-webhook-cert");
    assert_eq!(
        managed.configuration.as_deref(),
        Some("apisix-operator"),
        "the chart's ValidatingWebhookConfiguration"
    );
    assert_eq!(
        managed.hosts,
        vec![svc.clone(), format!("{svc}.cluster.local")]
    );

    // RBAC: that Secret in the release namespace (create cannot name it),
    // and the caBundle of that configuration; nothing wider.
    let rules = all_bound_rules(&objects);
    let ns = Some(NAMESPACE);
    let secret = Some("apisix-operator-webhook-cert");
    assert!(grants(&rules, "create", "", "secrets", ns, None));
    assert!(
        !grants(&rules, "patch", "", "secrets", ns, secret),
        "never patched"
    );
    for verb in ["get", "update"] {
        assert!(grants(&rules, verb, "", "secrets", ns, secret), "{verb}");
        assert!(!grants(&rules, verb, "", "secrets", ns, Some("other")));
    }
    assert!(!grants(&rules, "create", "", "secrets", Some("shop"), None));
    assert!(!grants(
        &rules,
        "update",
        "",
        "secrets",
        Some("shop"),
        secret
    ));
    let vwc = "validatingwebhookconfigurations";
    let group = "admissionregistration.k8s.io";
    for verb in ["get", "patch"] {
        assert!(grants(
            &rules,
            verb,
            group,
            vwc,
            None,
            Some("apisix-operator")
        ));
        assert!(!grants(&rules, verb, group, vwc, None, Some("other")));
    }
    for verb in ["update", "delete"] {
        assert!(
            !grants(&rules, verb, group, vwc, None, Some("apisix-operator")),
            "{verb}"
        );
    }
}

#[test]
fn with_cert_manager_the_pods_serve_the_certificate_it_issues() {
    let values = json!({"webhook": {"certManager": {"enabled": true}}});
    let objects = render_chart(&tools(), NAMESPACE, &values, false).unwrap();
    let certificate = install::of_kind(&objects, "Certificate").unwrap();
    let svc = format!("apisix-operator-webhook.{NAMESPACE}.svc");
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!([svc, format!("{svc}.cluster.local")])
    );
    // No issuerRef: a self-signed Issuer of the release.
    let issuer = install::of_kind(&objects, "Issuer").unwrap();
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": issuer["metadata"]["name"], "kind": "Issuer", "group": "cert-manager.io"})
    );
    // cert-manager injects the CA into the configuration.
    let configuration = install::of_kind(&objects, "ValidatingWebhookConfiguration").unwrap();
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{NAMESPACE}/{}",
            certificate["metadata"]["name"].as_str().unwrap()
        )
    );

    // The Secret it writes is mounted read-only where --webhook-cert-dir
    // points; the operator then manages nothing.
    let pod = &install::of_kind(&objects, "Deployment").unwrap()["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == certificate["spec"]["secretName"])
        .expect("the certificate's Secret is a volume");
    let mount = container(&objects)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("and mounted");
    assert_eq!(mount["readOnly"], true);
    let args = args(&objects);
    assert_eq!(
        flag(&args, "--webhook-cert-dir"),
        mount["mountPath"].as_str()
    );
    for managed in MANAGED_CERT_FLAGS {
        assert_eq!(flag(&args, managed), None, "{managed}");
    }
    let webhook = run_settings(&args).webhook.expect("the webhook is on");
    let CertSource::Files(dir) = webhook.certs else {
        panic!("certificates from the mounted Secret");
    };
    assert_eq!(dir.to_str(), mount["mountPath"].as_str());
    let rules = all_bound_rules(&objects);
    let vwc = "validatingwebhookconfigurations";
    let group = "admissionregistration.k8s.io";
    assert!(!grants(
        &rules,
        "patch",
        group,
        vwc,
        None,
        Some("apisix-operator")
    ));
    assert!(!grants(
        &rules,
        "create",
        "",
        "secrets",
        Some(NAMESPACE),
        None
    ));

    // An issuerRef of the user's (the full values: a ClusterIssuer), and
    // the port and timeout passed through.
    let objects = full_values_render();
    assert!(!objects.iter().any(|o| o["kind"] == "Issuer"));
    assert_eq!(
        install::of_kind(&objects, "Certificate").unwrap()["spec"]["issuerRef"],
        json!({"name": "cluster-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    let (crds_hook, ingress_hook) = chart_webhooks(&objects);
    assert_eq!(crds_hook["timeoutSeconds"], 10);
    assert_eq!(ingress_hook["timeoutSeconds"], 10);
    assert!(
        container(&objects)["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "webhook" && p["containerPort"] == 8443)
    );
}

#[test]
fn with_the_webhook_off_nothing_of_it_renders() {
    for values in [
        json!({"webhook": {"enabled": false}}),
        json!({"webhook": {"enabled": false, "certManager": {"enabled": true}}}),
    ] {
        let objects = render_chart(&tools(), NAMESPACE, &values, false).unwrap();
        for kind in ["ValidatingWebhookConfiguration", "Certificate", "Issuer"] {
            assert!(
                !objects.iter().any(|o| o["kind"] == kind),
                "{values}: {kind}"
            );
        }
        let services: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Service")
            .map(|o| &o["metadata"]["name"])
            .collect();
        assert_eq!(services, vec!["apisix-operator-metrics"], "{values}");
        let args = args(&objects);
        assert!(
            !args.iter().any(|a| a.starts_with("--webhook")),
            "{values}: {args:?}"
        );
        let container = container(&objects);
        assert_eq!(container["ports"].as_array().unwrap().len(), 1);
        assert!(container["volumeMounts"].is_null(), "{values}");
        let rules = all_bound_rules(&objects);
        assert!(!grants_certificate_rbac(&rules), "{rules:?}");
        assert!(run_settings(&args).webhook.is_none());
    }
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let tools = tools();
    for (values, reason) in [
        (json!({"operator": {"cluster": "Not_A_Label"}}), "cluster"),
        (json!({"etcd": {"auth": {"user": "u"}}}), "passwordSecret"),
        (
            json!({"operator": {"fencePrefix": "/apisix/fence"}}),
            "fencePrefix",
        ),
        (json!({"replicas": 3}), "replicas"),
        (json!({"operator": {"logFormat": "xml"}}), "logFormat"),
        (
            json!({"webhook": {"failurePolicy": "Never"}}),
            "failurePolicy",
        ),
        (json!({"webhook": {"timeoutSeconds": 31}}), "timeoutSeconds"),
        (
            json!({"webhook": {"certManager": {"enabled": true, "issuerRef": {"kind": "ClusterIssuer"}}}}),
            "issuerRef",
        ),
    ] {
        let err = render_chart(&tools, NAMESPACE, &values, false)
            .map(|_| ())
            .expect_err(&format!("{values} should be refused"));
        assert!(err.to_string().contains(reason), "{values}: {err}");
    }
}

#[test]
fn the_olm_bundle_passes_the_operator_frameworks_validation() {
    let out = tools()
        .olm_validate(&repo_root().join(BUNDLE))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
}

/// A container's `APISIX_OPERATOR_*` variables with literal values, as the
/// `run` flags they set (checked to be variables `run` reads), after its
/// arguments; and its other variables.
fn settings_of(container: &Value) -> (Vec<String>, Vec<Value>) {
    let table = apisix_operator::cli::settings_table();
    let flag_of = |env: &str| {
        table
            .lines()
            .find(|line| line.contains(&format!("| `{env}` |")))
            .and_then(|line| line.split('`').nth(1))
            .map(str::to_string)
    };
    let mut flags: Vec<String> = strings(&container["args"])
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut others = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap();
        match (flag_of(name), var["value"].as_str()) {
            (Some(flag), Some(value)) => flags.push(format!("{flag}={value}")),
            _ => {
                assert!(
                    !var["value"].is_string() || !name.starts_with("APISIX_OPERATOR_"),
                    "{name} is no variable run reads"
                );
                others.push(var.clone());
            }
        }
    }
    (flags, others)
}

fn csv() -> Value {
    let path = repo_root()
        .join(BUNDLE)
        .join("manifests/apisix-operator.clusterserviceversion.yaml");
    parse_documents(&std::fs::read_to_string(path).unwrap(), "the CSV")
        .unwrap()
        .remove(0)
}

#[test]
fn the_csv_installs_what_the_chart_installs() {
    let csv = csv();
    let objects = default_render();
    let install = &csv["spec"]["install"]["spec"];
    let deployment = &install["deployments"][0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    let chart_deployment = install::of_kind(&objects, "Deployment").unwrap();
    let mut chart_spec = chart_deployment["spec"].clone();
    let mut csv_spec = deployment["spec"].clone();
    // The webhook serves the certificate OLM mounts instead of one the
    // operator manages: the same settings otherwise, in the same order...
    let chart_args = args(&objects);
    let mut expected = Vec::new();
    for arg in &chart_args {
        if MANAGED_CERT_FLAGS
            .iter()
            .any(|f| arg.starts_with(&format!("{f}=")))
        {
            continue;
        }
        expected.push(arg.clone());
        if arg.starts_with("--webhook-listen-address=") {
            expected.push(format!("--webhook-cert-dir={OLM_CERT_DIR}"));
        }
    }
    assert_ne!(expected, chart_args, "the default render runs the webhook");
    // ...given as variables, which a Subscription's config.env can override.
    let csv_container = &mut csv_spec["template"]["spec"]["containers"][0];
    let (settings, mut csv_env) = settings_of(csv_container);
    assert_eq!(csv_container["args"], json!(["run"]));
    assert_eq!(settings, expected);
    // The one OLM addition: the OperatorGroup's namespaces.
    let added = csv_env.pop().unwrap();
    assert_eq!(added["name"], "APISIX_OPERATOR_NAMESPACES");
    csv_container["env"] = json!(csv_env);
    let chart_container = &mut chart_spec["template"]["spec"]["containers"][0];
    chart_container["args"] = json!(["run"]);
    assert_eq!(csv_spec, chart_spec);
    // The operator's own permissions; none for a certificate it does not
    // manage under OLM.
    assert_eq!(
        install["clusterPermissions"][0]["rules"],
        named(&objects, "ClusterRole", "apisix-operator")["rules"]
    );
    assert_eq!(
        install["permissions"][0]["rules"],
        named(&objects, "Role", "apisix-operator-leader-election")["rules"]
    );
    // Every owned CRD has an example, and the examples are valid CRs.
    let examples: Vec<Value> = serde_json::from_str(
        csv["metadata"]["annotations"]["alm-examples"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let owned = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .unwrap();
    assert_eq!(owned.len(), 7);
    for crd in owned {
        assert!(
            examples.iter().any(|e| e["kind"] == crd["kind"]),
            "an example of {}",
            crd["kind"]
        );
    }
    let chart = parse_documents(
        &std::fs::read_to_string(repo_root().join(CHART).join("Chart.yaml")).unwrap(),
        "Chart.yaml",
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        chart["kubeVersion"].as_str().unwrap(),
        format!(">={}-0", csv["spec"]["minKubeVersion"].as_str().unwrap()),
        "the chart and the CSV support the same Kubernetes versions"
    );
    let modes: Vec<&Value> = csv["spec"]["installModes"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(modes.iter().all(|m| m["supported"] == true), "{modes:?}");
}

#[test]
fn the_csvs_webhook_definitions_are_the_charts_webhooks() {
    let csv = csv();
    let objects = default_render();
    let (crds_hook, ingress_hook) = chart_webhooks(&objects);
    let definitions = csv["spec"]["webhookdefinitions"].as_array().unwrap();
    assert_eq!(definitions.len(), 2);
    let deployment = &csv["spec"]["install"]["spec"]["deployments"][0];
    let webhook_port = container(&objects)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webhook")
        .unwrap()["containerPort"]
        .clone();
    for webhook in [crds_hook, ingress_hook] {
        let name = &webhook["name"];
        let definition = definitions
            .iter()
            .find(|d| &d["generateName"] == name)
            .unwrap_or_else(|| panic!("a definition of {name}"));
        assert_eq!(definition["type"], "ValidatingAdmissionWebhook");
        assert_eq!(definition["deploymentName"], deployment["name"]);
        // OLM's Service: 443 to the container's webhook port.
        assert_eq!(definition["containerPort"], 443);
        assert_eq!(definition["targetPort"], webhook_port);
        assert_eq!(
            definition["webhookPath"],
            webhook["clientConfig"]["service"]["path"]
        );
        for field in install::WEBHOOK_FIELDS {
            assert_eq!(definition[field], webhook[field], "{name}: {field}");
        }
        // OLM sets the namespace selector (the OperatorGroup's) and the
        // client configuration (its Service and CA).
        assert!(definition["namespaceSelector"].is_null());
        assert!(definition["clientConfig"].is_null());
    }
    // The CSV's Deployment serves the certificate OLM mounts.
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let (csv_args, _) = settings_of(container);
    let webhook = run_settings(&csv_args).webhook.expect("the webhook is on");
    let CertSource::Files(dir) = webhook.certs else {
        panic!("OLM's certificate");
    };
    assert_eq!(dir.to_str(), Some(OLM_CERT_DIR));
    assert_eq!(webhook.listen.port() as u64, webhook_port.as_u64().unwrap());

    // OLM creates its own webhook configuration and Service: the chart's
    // are no bundle manifests, and the bundle grants no certificate RBAC.
    let dir = repo_root().join(BUNDLE).join("manifests");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for object in parse_documents(&text, &path.display().to_string()).unwrap() {
            assert_ne!(object["kind"], "ValidatingWebhookConfiguration", "{path:?}");
            if object["kind"] == "Service" {
                assert_eq!(object["metadata"]["name"], "apisix-operator-metrics");
            }
        }
    }
    let install = &csv["spec"]["install"]["spec"];
    let rules: Vec<(Option<String>, Value)> = [
        (None, &install["clusterPermissions"][0]["rules"]),
        (
            Some(NAMESPACE.to_string()),
            &install["permissions"][0]["rules"],
        ),
    ]
    .into_iter()
    .flat_map(|(scope, rules)| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .map(move |r| (scope.clone(), r.clone()))
    })
    .collect();
    assert!(!grants_certificate_rbac(&rules), "{rules:?}");
}

#[tokio::test]
async fn the_api_server_accepts_the_manifests_the_chart_and_the_bundle() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let tools = tools();

    // The kustomize base (CRDs first: it lists them first).
    let base = parse_documents(
        &tools
            .kustomize_build(&repo_root().join("deploy/manifests"))
            .unwrap(),
        "kustomize build",
    )
    .unwrap();
    apply_all(&client, &base, GENEROUS).await;

    // Every option, as a second release (its own names) in its own namespace.
    let mut full = vec![json!({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "apisix-prod"}})];
    full.extend(
        full_values_render()
            .into_iter()
            // No prometheus-operator or cert-manager CRDs in this cluster.
            .filter(|o| o["kind"] != "ServiceMonitor")
            .filter(|o| {
                !o["apiVersion"]
                    .as_str()
                    .unwrap()
                    .starts_with("cert-manager.io/")
            })
            .map(|mut o| {
                for kind in [
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "IngressClass",
                    "ValidatingWebhookConfiguration",
                ] {
                    if o["kind"] == kind {
                        o["metadata"]["name"] = json!("apisix-prod");
                        if kind == "ClusterRoleBinding" {
                            o["roleRef"]["name"] = json!("apisix-prod");
                        }
                    }
                }
                o
            }),
    );
    apply_all(&client, &full, GENEROUS).await;

    // What OLM creates from the bundle.
    let csv = csv();
    let mut olm = install::olm_objects(&csv, "olm-apisix", &[]).unwrap();
    for file in [
        "apisix-operator_policy_v1_poddisruptionbudget.yaml",
        "apisix-operator-metrics_v1_service.yaml",
    ] {
        let path = repo_root().join(BUNDLE).join("manifests").join(file);
        let mut object = parse_documents(&std::fs::read_to_string(path).unwrap(), file)
            .unwrap()
            .remove(0);
        object["metadata"]["namespace"] = json!("olm-apisix");
        olm.push(object);
    }
    apply_all(&client, &olm, GENEROUS).await;

    let sa = "system:serviceaccount:olm-apisix:apisix-operator";
    for (verb, resource, namespace, expected) in [
        ("watch", "apisix.apache.org/apisixroutes", "shop", true),
        ("patch", "networking.k8s.io/ingresses/status", "shop", true),
        ("update", "coordination.k8s.io/leases", "olm-apisix", true),
        ("update", "coordination.k8s.io/leases", "shop", false),
        ("get", "secrets", "shop", false), // list/watch only
    ] {
        let answer = audit::allowed(&client, sa, verb, resource, namespace)
            .await
            .unwrap();
        assert_eq!(answer, expected, "{verb} {resource} in {namespace}");
    }

    // The webhook's certificate: the base's operator manages it (its Secret,
    // the configuration's caBundle), OLM's does not.
    let base_sa = "system:serviceaccount:apisix-operator:apisix-operator";
    let vwc = "admissionregistration.k8s.io/validatingwebhookconfigurations";
    for (user, verb, resource, namespace, name, expected) in [
        (base_sa, "create", "secrets", NAMESPACE, "", true),
        (base_sa, "create", "secrets", "shop", "", false),
        (
            base_sa,
            "get",
            "secrets",
            NAMESPACE,
            "apisix-operator-webhook-cert",
            true,
        ),
        (
            base_sa,
            "update",
            "secrets",
            NAMESPACE,
            "apisix-operator-webhook-cert",
            true,
        ),
        (base_sa, "update", "secrets", NAMESPACE, "other", false),
        (base_sa, "patch", vwc, "", "apisix-operator", true),
        (base_sa, "patch", vwc, "", "other", false),
        (base_sa, "delete", vwc, "", "apisix-operator", false),
        (sa, "create", "secrets", "olm-apisix", "", false),
        (sa, "patch", vwc, "", "apisix-operator", false),
    ] {
        let answer = allowed_named(&client, user, verb, resource, namespace, name).await;
        assert_eq!(
            answer, expected,
            "{user}: {verb} {resource} {name:?} in {namespace:?}"
        );
    }
}

/// Whether RBAC lets `user` do `verb` on the `resource` (`group/resource`,
/// or `resource` for the core group) named `name` (empty: none) in
/// `namespace` (empty: cluster-scoped).
async fn allowed_named(
    client: &kube::Client,
    user: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let (group, resource) = resource.split_once('/').unwrap_or(("", resource));
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                        "namespace": namespace, "name": name}}
    }))
    .unwrap();
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&Default::default(), &review)
        .await
        .unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_the_chart() {
    let env = TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("test environment: {e}"));
    let client = env.kube_client().await.unwrap();
    let tools = tools();
    let chart = repo_root().join(CHART);
    let chart = chart.to_str().unwrap();
    let kubeconfig = env
        .apiserver
        .kubeconfig_path()
        .to_str()
        .unwrap()
        .to_string();
    let release = |verb: &str, extra: &[&str]| {
        let mut args = vec![
            verb,
            "apisix-operator",
            "--namespace",
            "helm-release",
            "--kubeconfig",
            &kubeconfig,
        ];
        args.extend_from_slice(extra);
        tools.helm(&args).unwrap_or_else(|e| panic!("{e}"))
    };
    // Own names, so this release does not meet the other tests' objects.
    let names = [
        "--set",
        "fullnameOverride=helm-release",
        "--set",
        "ingressClass.name=apisix-helm",
    ];
    let mut install = vec![chart, "--create-namespace"];
    install.extend_from_slice(&names);
    release("install", &install);

    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), "helm-release");
    let replicas = || async {
        deployments
            .get_opt("helm-release")
            .await
            .unwrap()
            .and_then(|d| d.spec?.replicas)
    };
    assert_eq!(replicas().await, Some(3));
    let crds = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(client.clone());
    assert!(
        crds.get_opt("apisixroutes.apisix.apache.org")
            .await
            .unwrap()
            .is_some()
    );

    // The leader sets the webhooks' caBundle (a strategic merge patch, as
    // the operator sends it); an upgrade must leave it in place.
    let configurations = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let ca = CertificateAuthority::new("webhook CA").unwrap();
    let ca_bundle = k8s_openapi::ByteString(ca.cert_pem().as_bytes().to_vec());
    let installed = configurations.get("helm-release").await.unwrap();
    let hooks: Vec<Value> = installed
        .webhooks
        .iter()
        .flatten()
        .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": ca_bundle}}))
        .collect();
    assert_eq!(hooks.len(), 2);
    configurations
        .patch(
            "helm-release",
            &PatchParams::default(),
            &Patch::Strategic(json!({"webhooks": hooks})),
        )
        .await
        .unwrap();

    let mut upgrade = vec![chart];
    upgrade.extend_from_slice(&names);
    upgrade.extend_from_slice(&[
        "--set",
        "replicaCount=5",
        "--set",
        "webhook.timeoutSeconds=7",
    ]);
    release("upgrade", &upgrade);
    assert_eq!(replicas().await, Some(5));
    let upgraded = configurations.get("helm-release").await.unwrap();
    for webhook in upgraded.webhooks.iter().flatten() {
        assert_eq!(webhook.timeout_seconds, Some(7), "the upgrade applied");
        assert_eq!(
            webhook.client_config.ca_bundle.as_ref(),
            Some(&ca_bundle),
            "{}: the leader's caBundle survives the upgrade",
            webhook.name
        );
    }

    release("uninstall", &[]);
    eventually(
        "the release's Deployment to be deleted",
        GENEROUS,
        || async { replicas().await.is_none().then_some(()) },
    )
    .await;
    eventually(
        "the release's webhook configuration to be deleted",
        GENEROUS,
        || async {
            configurations
                .get_opt("helm-release")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    // Helm keeps CRDs (and so the users' CRs) on uninstall.
    assert!(
        crds.get_opt("apisixroutes.apisix.apache.org")
            .await
            .unwrap()
            .is_some()
    );
}
