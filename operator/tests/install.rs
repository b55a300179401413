//! The install artifacts of `deploy/`: the Helm chart lints and renders every
//! option into flags the operator accepts; the plain manifests (kustomize)
//! and the OLM bundle are what the chart renders; the bundle passes the
//! operator framework's validation; and the API server accepts all of them
//! with server-side apply. (`install_run.rs` runs the operator as the
//! chart deploys it.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use apisix_operator::cli::{Cli, Command};
use apisix_operator_testenv::install::{
    self, BUNDLE, CHART, InstallTools, NAMESPACE, parse_documents, render_chart, repo_root,
};
use apisix_operator_testenv::{TestEnv, apply_all, audit, eventually};
use clap::Parser;
use kube::api::Api;
use serde_json::{Value, json};

const GENEROUS: Duration = Duration::from_secs(90);

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

    // Namespaces are read only with a namespace selector.
    let rules = &install::of_kind(&objects, "ClusterRole").unwrap()["rules"];
    assert!(
        !rules.to_string().contains("\"namespaces\""),
        "no namespaces permission without a selector: {rules}"
    );
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
/// the other side of three either-or settings).
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
    // The one OLM addition: the OperatorGroup's namespaces.
    let csv_env = csv_spec["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    let added = csv_env.pop().unwrap();
    assert_eq!(added["name"], "APISIX_OPERATOR_NAMESPACES");
    chart_spec["template"]["spec"]["containers"][0]["env"] =
        csv_spec["template"]["spec"]["containers"][0]["env"].clone();
    assert_eq!(csv_spec, chart_spec);
    assert_eq!(
        install["clusterPermissions"][0]["rules"],
        install::of_kind(&objects, "ClusterRole").unwrap()["rules"]
    );
    assert_eq!(
        install["permissions"][0]["rules"],
        install::of_kind(&objects, "Role").unwrap()["rules"]
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

/// The objects OLM would create from the CSV in `namespace` (a
/// ServiceAccount, the Deployment, and RBAC for the permissions).
fn olm_objects(csv: &Value, namespace: &str) -> Vec<Value> {
    let install = &csv["spec"]["install"]["spec"];
    let deployment = &install["deployments"][0];
    let sa = install["permissions"][0]["serviceAccountName"]
        .as_str()
        .unwrap();
    let subject = json!([{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]);
    let role_ref = |kind: &str, name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    let cluster_role = format!("{namespace}-{sa}");
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": sa, "namespace": namespace}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": cluster_role}, "rules": install["clusterPermissions"][0]["rules"]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": cluster_role}, "roleRef": role_ref("ClusterRole", &cluster_role),
               "subjects": subject}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": sa, "namespace": namespace},
               "rules": install["permissions"][0]["rules"]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": sa, "namespace": namespace}, "roleRef": role_ref("Role", sa),
               "subjects": subject}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": deployment["name"], "namespace": namespace,
                            "labels": deployment["label"]},
               "spec": deployment["spec"]}),
    ]
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
            // No prometheus-operator CRDs in this cluster.
            .filter(|o| o["kind"] != "ServiceMonitor")
            .map(|mut o| {
                for kind in ["ClusterRole", "ClusterRoleBinding", "IngressClass"] {
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
    let mut olm = olm_objects(&csv, "olm-apisix");
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

    let mut upgrade = vec![chart];
    upgrade.extend_from_slice(&names);
    upgrade.extend_from_slice(&["--set", "replicaCount=5"]);
    release("upgrade", &upgrade);
    assert_eq!(replicas().await, Some(5));

    release("uninstall", &[]);
    eventually(
        "the release's Deployment to be deleted",
        GENEROUS,
        || async { replicas().await.is_none().then_some(()) },
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
