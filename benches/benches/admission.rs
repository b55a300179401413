//! The admission webhook under load: with N Ingresses already served, C
//! Ingresses are created at once, first without the webhook (what the API
//! server alone costs), then with every create reviewed by it (one replica,
//! the real binary, its own certificate on loopback). Reports the create
//! latency seen by the client (API write to acknowledgement) and the
//! webhook's own review time from its histogram. `cargo bench --bench
//! admission` (in `make bench`): 1,000 existing and 150 concurrent creates
//! (ingress-nginx's webhook took over 10 s per create at that load),
//! written to `benches/results/admission.md`; under `cargo test`, 50 and
//! 20, printed, not asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use apisix_operator_benches::e2e::operator_binary;
use apisix_operator_benches::full_run;
use apisix_operator_testenv::{TestEnv, create_object, eventually, http, ports};
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const NAMESPACE: &str = "bench";
/// The configuration name the chart's RBAC lets the operator patch.
const CONFIGURATION: &str = "apisix-operator";
const GENEROUS: Duration = Duration::from_secs(300);

fn ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": NAMESPACE, "name": name},
        "spec": {"ingressClassName": "apisix", "rules": [{"host": format!("{name}.example.com"), "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        ]}}]},
    })
}

fn configuration(port: u16) -> ValidatingWebhookConfiguration {
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION},
        "webhooks": [{
            "name": "ingresses.validate.apisix.apache.org",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate")},
            "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                       "resources": ["ingresses"], "operations": ["CREATE", "UPDATE"]}],
            // Fail, so that a create that skipped the webhook cannot pass
            // unnoticed: every sample below went through it.
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
        }],
    }))
    .unwrap()
}

async fn create_all(client: &kube::Client, objects: Vec<Value>, parallel: usize) -> Vec<Duration> {
    futures::stream::iter(objects)
        .map(|object| {
            let client = client.clone();
            async move {
                let started = Instant::now();
                create_object(&client, &object)
                    .await
                    .unwrap_or_else(|e| panic!("creating {}: {e}", object["metadata"]["name"]));
                started.elapsed()
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The webhook's mean review time from its histogram, in milliseconds.
fn mean_review_ms(metrics_port: u16) -> f64 {
    let (_, body) = http::get(metrics_port, "/metrics").expect("metrics");
    let value = |name: &str| -> f64 {
        body.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let count = value("apisix_operator_admission_review_duration_seconds_count");
    let sum = value("apisix_operator_admission_review_duration_seconds_sum");
    if count == 0.0 {
        0.0
    } else {
        sum / count * 1000.0
    }
}

async fn run(existing: usize, concurrent: usize) -> String {
    let env = TestEnv::start().await.expect("the test environment starts");
    let client = env.kube_client().await.unwrap();
    let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                       "metadata": {"name": "apisix"},
                       "spec": {"controller": "apisix.apache.org/apisix-operator"}});
    let web = json!({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"namespace": NAMESPACE, "name": "web"},
                     "spec": {"ports": [{"port": 80}]}});
    for object in [class, web] {
        create_object(&client, &object).await.unwrap();
    }
    let existing_objects = (0..existing)
        .map(|i| ingress(&format!("existing-{i}")))
        .collect();
    create_all(&client, existing_objects, 16).await;
    // The same burst without the webhook: what the API server alone costs.
    let baseline = (0..concurrent)
        .map(|i| ingress(&format!("baseline-{i}")))
        .collect();
    let started = Instant::now();
    let mut without = create_all(&client, baseline, concurrent).await;
    let without_wall = started.elapsed();

    let (webhook_port, metrics_port) = (ports::free_port().unwrap(), ports::free_port().unwrap());
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration(webhook_port))
        .await
        .unwrap();
    let args: Vec<String> = vec![
        "run".into(),
        format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
        "--lease-namespace=default".into(),
        format!("--listen-address=127.0.0.1:{metrics_port}"),
        format!("--webhook-listen-address=127.0.0.1:{webhook_port}"),
        "--webhook-hosts=127.0.0.1".into(),
        format!("--webhook-configuration={CONFIGURATION}"),
    ];
    let binary = operator_binary();
    let _operator = env
        .spawn_operator("operator-admission-bench", Path::new(&binary), &args)
        .await
        .unwrap();
    eventually("the operator to be ready", GENEROUS, || async move {
        (http::get(metrics_port, "/readyz")?.0 == 200).then_some(())
    })
    .await;
    apisix_operator_testenv::ca_bundle_patched(&client, CONFIGURATION, GENEROUS).await;
    // The API server may lag behind the patched configuration.
    eventually("a first create through the webhook", GENEROUS, || {
        let client = client.clone();
        async move { create_object(&client, &ingress("warm-up")).await.ok() }
    })
    .await;

    let objects = (0..concurrent)
        .map(|i| ingress(&format!("new-{i}")))
        .collect();
    let started = Instant::now();
    let mut with = create_all(&client, objects, concurrent).await;
    let with_wall = started.elapsed();
    let review = format!("{:.2}", mean_review_ms(metrics_port));
    [
        row(
            "without the webhook",
            existing,
            &mut without,
            without_wall,
            "-",
        ),
        row(
            "through the webhook",
            existing,
            &mut with,
            with_wall,
            &review,
        ),
    ]
    .join("\n")
}

fn row(
    what: &str,
    existing: usize,
    samples: &mut [Duration],
    wall: Duration,
    review: &str,
) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "| {what} | {existing} | {} | {:.1} | {:.1} | {:.1} | {review} | {:.2} |",
        samples.len(),
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(samples[samples.len() - 1]),
        wall.as_secs_f64(),
    )
}

fn main() {
    let full = full_run();
    let (existing, concurrent) = if full { (1_000, 150) } else { (50, 20) };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let rows = runtime.block_on(run(existing, concurrent));
    let table = format!(
        "| creates | existing Ingresses | concurrent creates | create p50 ms | create p99 ms | create max ms | webhook review mean ms | all creates done s |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n{rows}\n"
    );
    println!("{table}");
    if full {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/admission.md");
        let machine = apisix_operator_benches::e2e::report::Machine::describe();
        let text = format!(
            "# Admission webhook under load\n\n`cargo bench -p apisix-operator-benches --bench admission` (release build), one replica. Machine: {} ({} cores, {:.0} GiB), load average {} at the start ({}).\n\n{table}",
            machine.cpu, machine.cores, machine.memory_gib, machine.load_average, machine.started
        );
        std::fs::write(&path, text).expect("writing the results");
    }
}
