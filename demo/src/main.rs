//! `make demo`: starts the local environment (kube-apiserver, its etcd, the
//! APISIX etcd), installs the APISIX and Gateway API CRDs, applies `examples/`, runs three `apisix-operator run`
//! replicas, waits until etcd holds exactly the translation of the cluster,
//! shows who leads and what was written, kills the leader and shows the
//! takeover and a change landing. Stays up until Ctrl-C (`--once` exits).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apisix_operator::cli::translate::{collect_files, dump, read_objects};
use apisix_operator::index::watch::Namespaces;
use apisix_operator::index::{ClusterIndex, load_cluster};
use apisix_operator::translate::TranslateConfig;
use apisix_operator_testenv::{ManagedProcess, TestEnv, apisix_schema, create_object, gateway_api};
use clap::Parser;
use etcd_client::GetOptions;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// The apisix-operator binary to run.
    #[arg(long)]
    operator: PathBuf,
    /// Manifests to apply (files or directories).
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Exit after the show instead of staying up.
    #[arg(long)]
    once: bool,
}

const PREFIX: &str = "/apisix";
const CLUSTER: &str = "demo";
const LEASE: &str = "apisix-operator-leader";

fn step(text: &str) {
    println!("\n==> {text}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    step("starting the local environment (kube-apiserver + etcd, and the APISIX etcd)");
    let env = TestEnv::start().await?;
    println!(
        "    kube-apiserver {}  kubeconfig {}",
        env.apiserver.url(),
        env.apiserver.kubeconfig_path().display()
    );
    println!(
        "    APISIX etcd    {}  prefix {PREFIX}",
        env.apisix_etcd.client_url()
    );
    let client = env.kube_client().await?;

    step("installing the APISIX CRDs and the Gateway API's (v1.5.1)");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in apisix_operator::api::all_crds() {
        crds.create(&PostParams::default(), &crd).await?;
    }
    for crd in gateway_api::crds()? {
        create_object(&client, &crd).await?;
    }

    step(&format!("applying {}", args.examples.display()));
    let files = collect_files(std::slice::from_ref(&args.examples))?;
    let mut objects = Vec::new();
    for file in &files {
        objects.extend(read_objects(file)?.into_iter().map(|o| (file.clone(), o)));
    }
    for (_, object) in &objects {
        // A CR may need a moment until its freshly installed CRD is served.
        let mut attempts = 0;
        while let Err(err) = create_object(&client, object).await {
            attempts += 1;
            if attempts > 100 {
                return Err(err.into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("    {} objects from {} file(s)", objects.len(), files.len());

    step("starting three operator replicas");
    // As the Helm chart's ServiceAccount, with the chart's RBAC.
    let kubeconfig = env
        .operator_kubeconfig()
        .await
        .unwrap_or_else(|e| panic!("the operator's ServiceAccount: {e}"))
        .display()
        .to_string();
    let mut replicas: BTreeMap<String, ManagedProcess> = BTreeMap::new();
    // APISIX 3.18's plugin schemas, when ../shared has them.
    let schema = PathBuf::from("../shared/apisix-schema/control-api-schema.json");
    let schema_flag = schema
        .exists()
        .then(|| format!("--apisix-schema={}", schema.display()));
    for i in 1..=3 {
        let identity = format!("replica-{i}");
        let process = ManagedProcess::spawn_with_env(
            &identity,
            &args.operator,
            &[
                "run".into(),
                format!("--etcd-endpoints={}", env.apisix_etcd.client_url()),
                format!("--cluster={CLUSTER}"),
                format!("--identity={identity}"),
                "--lease-namespace=default".into(),
                "--ingress-status-address=192.0.2.10".into(),
                format!("--listen-address=127.0.0.1:{}", 19090 + i),
            ]
            .into_iter()
            .chain(schema_flag.clone())
            .collect::<Vec<_>>(),
            &[("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "info")],
            &env.workdir.path().join(format!("{identity}.log")),
        )?;
        println!(
            "    {identity}: pid {}, log {}",
            process.pid(),
            process.log_path().display()
        );
        replicas.insert(identity, process);
    }

    let mut etcd = env.apisix_etcd_client().await?;
    let want = live_translation(&client).await?;
    step(&format!(
        "waiting until etcd holds exactly the translation ({} keys)",
        want.len()
    ));
    let started = Instant::now();
    wait_until(&mut etcd, &want).await?;
    println!("    converged in {:?}", started.elapsed());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let leader = holder(&leases).await?;
    println!("    leader: {leader}");
    show_keys(&mut etcd).await?;
    show_gateway(&client).await?;
    {
        let report = apisix_schema::validate(&want, PREFIX)?;
        println!(
            "    validate.py: {}",
            report.output.lines().last().unwrap_or_default()
        );
    }

    step(&format!(
        "killing the leader {leader} (SIGKILL) and scaling the storefront endpoints"
    ));
    let killed_at = Instant::now();
    replicas
        .get(&leader)
        .expect("the leader is one of ours")
        .signal(libc::SIGKILL)?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "shop");
    let patch = json!({"endpoints": [
        {"addresses": ["10.244.1.10"], "conditions": {"ready": true}},
        {"addresses": ["10.244.2.11"], "conditions": {"ready": true}},
        {"addresses": ["10.244.5.14"], "conditions": {"ready": true}},
    ]});
    slices
        .patch(
            "storefront-abc12",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    let want = live_translation(&client).await?;
    wait_until(&mut etcd, &want).await?;
    let new_leader = holder(&leases).await?;
    println!(
        "    {new_leader} took over; the change landed {:?} after the kill",
        killed_at.elapsed()
    );
    let upstream = etcd
        .get(
            format!("{PREFIX}/upstreams/"),
            Some(GetOptions::new().with_prefix()),
        )
        .await?;
    for kv in upstream.kvs() {
        let value: Value = serde_json::from_slice(kv.value())?;
        if value["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("shop_storefront_"))
        {
            println!("    {} nodes: {}", kv.key_str()?, value["nodes"]);
        }
    }

    if args.once {
        step("done (--once)");
        return Ok(());
    }
    step("the environment stays up; press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The translation of the live cluster, read as `run` reads it (route
/// priorities of HTTPRoutes follow creation times only the API server
/// knows).
async fn live_translation(
    client: &kube::Client,
) -> Result<BTreeMap<String, Value>, Box<dyn std::error::Error>> {
    let config = TranslateConfig::defaults(
        PREFIX,
        apisix_operator::apisix::Ownership::new(CLUSTER).expect("a valid name"),
    );
    let loaded = load_cluster(
        client,
        &Namespaces::All,
        ClusterIndex::new(config),
        Duration::from_secs(60),
    )
    .await?;
    let mut index = loaded.index;
    index.flush();
    Ok(dump(&index))
}

/// The Gateway's status, once the leader has written it.
async fn show_gateway(client: &kube::Client) -> Result<(), Box<dyn std::error::Error>> {
    let resource = kube::discovery::ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "Gateway".into(),
        plural: "gateways".into(),
    };
    let gateways: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "shop", &resource);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = gateways.get("public").await?.data["status"].clone();
        let programmed = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Programmed" && c["status"] == "True");
        if programmed {
            let listeners: Vec<String> = status["listeners"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    format!(
                        "{} {} route(s)",
                        l["name"].as_str().unwrap_or("?"),
                        l["attachedRoutes"]
                    )
                })
                .collect();
            println!(
                "    Gateway shop/public: Programmed; listeners: {}",
                listeners.join(", ")
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("Gateway shop/public is not Programmed: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn holder(leases: &Api<Lease>) -> Result<String, Box<dyn std::error::Error>> {
    for _ in 0..100 {
        let lease = leases.get_opt(LEASE).await?;
        if let Some(holder) = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity) {
            return Ok(holder);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("no replica holds the Lease".into())
}

async fn wait_until(
    etcd: &mut etcd_client::Client,
    want: &BTreeMap<String, Value>,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = etcd
            .get(format!("{PREFIX}/"), Some(GetOptions::new().with_prefix()))
            .await?;
        let have: BTreeMap<String, Value> = response
            .kvs()
            .iter()
            .filter_map(|kv| {
                let mut value: Value = serde_json::from_slice(kv.value()).ok()?;
                let map = value.as_object_mut()?;
                map.remove("create_time");
                map.remove("update_time");
                Some((String::from_utf8_lossy(kv.key()).into_owned(), value))
            })
            .collect();
        if &have == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("etcd did not converge within 120s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn show_keys(etcd: &mut etcd_client::Client) -> Result<(), Box<dyn std::error::Error>> {
    let response = etcd
        .get(
            format!("{PREFIX}/"),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await?;
    let mut by_dir: BTreeMap<String, usize> = BTreeMap::new();
    for kv in response.kvs() {
        let key = kv.key_str()?;
        let dir = key
            .trim_start_matches(PREFIX)
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        *by_dir.entry(dir).or_default() += 1;
    }
    println!(
        "    APISIX keys written: {} ({by_dir:?})",
        response.kvs().len()
    );
    let routes = etcd
        .get(
            format!("{PREFIX}/routes/"),
            Some(GetOptions::new().with_prefix().with_limit(2)),
        )
        .await?;
    for kv in routes.kvs() {
        println!("    {} = {}", kv.key_str()?, kv.value_str()?);
    }
    Ok(())
}
