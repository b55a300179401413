//! A real local control plane for apisix-operator's tests, benches, chaos
//! tests and demo: an etcd plus a kube-apiserver on top of it, and a second,
//! separate etcd that plays the APISIX store, as in production.
//!
//! Everything runs as child processes on free loopback ports. Binaries come
//! from `testenv/provision.sh` (built from pinned Go modules and cached outside
//! the clone). Children die with the test process: every child is spawned with
//! `PR_SET_PDEATHSIG`, and [`ManagedProcess`] kills it on drop, so neither a
//! panic nor a killed test run leaves processes behind.

#![forbid(unsafe_op_in_unsafe_fn)]

mod apiserver;
pub mod apisix_schema;
pub mod audit;
mod binaries;
mod error;
mod etcd;
mod etcd_cluster;
pub mod gateway_api;
pub mod http;
pub mod install;
mod kubeconfig;
mod objects;
mod pki;
pub mod ports;
mod process;
mod wait;
mod workdir;

pub use apiserver::KubeApiServer;
pub use binaries::{Binaries, Versions};
pub use error::TestEnvError;
pub use etcd::{EtcdOptions, EtcdServer, EtcdTls};
pub use etcd_cluster::EtcdCluster;
pub use objects::{apply_all, ca_bundle_patched, create_object, delete_object, server_side_apply};
pub use pki::{CertificateAuthority, IssuedCert};
pub use process::ManagedProcess;
pub use wait::eventually;
pub use workdir::WorkDir;

use tokio::sync::OnceCell;

/// The whole local environment: kube-apiserver with its own etcd, and the
/// separate APISIX etcd.
pub struct TestEnv {
    pub workdir: WorkDir,
    pub kube_etcd: EtcdServer,
    pub apiserver: KubeApiServer,
    pub apisix_etcd: EtcdServer,
    /// Set on first use by [`TestEnv::operator_kubeconfig`].
    operator_kubeconfig: OnceCell<std::path::PathBuf>,
}

static SHARED: OnceCell<TestEnv> = OnceCell::const_new();

impl TestEnv {
    /// Starts a new environment in a fresh work directory.
    pub async fn start() -> Result<TestEnv, TestEnvError> {
        let binaries = Binaries::locate()?;
        let workdir = WorkDir::new()?;
        let kube_etcd = EtcdServer::start(
            &binaries,
            &workdir.path().join("kube-etcd"),
            EtcdOptions::default(),
        )
        .await?;
        let apiserver = KubeApiServer::start(
            &binaries,
            &workdir.path().join("kube-apiserver"),
            &kube_etcd.client_url(),
        )
        .await?;
        let apisix_etcd = EtcdServer::start(
            &binaries,
            &workdir.path().join("apisix-etcd"),
            EtcdOptions::default(),
        )
        .await?;
        Ok(TestEnv {
            workdir,
            kube_etcd,
            apiserver,
            apisix_etcd,
            operator_kubeconfig: OnceCell::new(),
        })
    }

    /// One environment shared by every test of a test binary (starting a
    /// kube-apiserver takes seconds). Tests isolate themselves with their own
    /// namespaces and etcd prefixes, and build their own clients, because a
    /// client is bound to the tokio runtime of the test that made it.
    ///
    /// The environment is never dropped; its processes die with the test
    /// binary through `PR_SET_PDEATHSIG`, and its work directory is removed by
    /// the next run's stale-directory sweep.
    pub async fn shared() -> Result<&'static TestEnv, TestEnvError> {
        SHARED.get_or_try_init(TestEnv::start).await
    }

    /// A kube client with cluster-admin rights.
    pub async fn kube_client(&self) -> Result<kube::Client, TestEnvError> {
        self.apiserver.admin_client().await
    }

    /// An extra etcd of its own (killed when dropped), for tests that need a
    /// store no other test writes to, e.g. to check that the global revision
    /// does not move, or to try TLS and authentication.
    pub async fn private_etcd(
        &self,
        name: &str,
        options: EtcdOptions,
    ) -> Result<EtcdServer, TestEnvError> {
        let binaries = Binaries::locate()?;
        let dir = self
            .workdir
            .path()
            .join(format!("etcd-{name}-{}", unique()));
        EtcdServer::start(&binaries, &dir, options).await
    }

    /// An etcd cluster of `size` members of its own (killed when dropped),
    /// for tests that kill and restart members.
    pub async fn private_etcd_cluster(
        &self,
        name: &str,
        size: usize,
    ) -> Result<EtcdCluster, TestEnvError> {
        let binaries = Binaries::locate()?;
        let dir = self
            .workdir
            .path()
            .join(format!("etcd-cluster-{name}-{}", unique()));
        EtcdCluster::start(&binaries, &dir, size).await
    }

    /// A client of the APISIX etcd.
    pub async fn apisix_etcd_client(&self) -> Result<etcd_client::Client, TestEnvError> {
        self.apisix_etcd.client().await
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
