//! A multi-member etcd cluster on loopback (plain HTTP), for the chaos
//! tests' APISIX store: members can be killed and restarted on their own
//! data directory and ports, so quorum, leader loss and rejoining are real.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd_client::ConnectOptions;

use crate::{Binaries, ManagedProcess, TestEnvError, ports};

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One member: how to start it again, and its process while it runs.
struct Member {
    name: String,
    client_port: u16,
    args: Vec<String>,
    log: PathBuf,
    process: Option<ManagedProcess>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self, binary: &Path) -> Result<(), TestEnvError> {
        let process = ManagedProcess::spawn(&self.name, binary, &self.args, &self.log)?;
        self.process = Some(process);
        Ok(())
    }
}

/// A running etcd cluster; every member is killed on drop.
pub struct EtcdCluster {
    binary: PathBuf,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `size` members in `dir` and waits until every one answers.
    pub async fn start(
        binaries: &Binaries,
        dir: &Path,
        size: usize,
    ) -> Result<EtcdCluster, TestEnvError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            let mut cluster = EtcdCluster {
                binary: binaries.etcd.clone(),
                members: plan_members(&dir.join(format!("attempt-{attempt}")), size)?,
            };
            for i in 0..size {
                cluster.members[i].spawn(&cluster.binary)?;
            }
            match cluster.wait_ready_all().await {
                Ok(()) => return Ok(cluster),
                // A lost port race shows as an early exit: try other ports.
                Err(err @ TestEnvError::ExitedEarly { .. }) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt ran"))
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Every member's client port, in member order.
    pub fn client_ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.client_port).collect()
    }

    /// A client of every member.
    pub async fn client(&self) -> Result<etcd_client::Client, TestEnvError> {
        Ok(etcd_client::Client::connect(self.client_urls(), Some(connect_options())).await?)
    }

    /// A client of member `i` only (for maintenance calls such as
    /// defragmentation, which act on the member they reach).
    pub async fn member_client(&self, i: usize) -> Result<etcd_client::Client, TestEnvError> {
        member_client(&self.members[i]).await
    }

    /// SIGKILLs member `i` (its data stays, for [`EtcdCluster::restart`]).
    pub fn kill(&mut self, i: usize) {
        self.members[i].process = None;
    }

    /// Starts member `i` again on its data directory and ports, and waits
    /// until it answers.
    pub async fn restart(&mut self, i: usize) -> Result<(), TestEnvError> {
        self.kill(i);
        let binary = self.binary.clone();
        self.members[i].spawn(&binary)?;
        self.wait_ready(i).await
    }

    /// The member that is the Raft leader, as the members report it.
    pub async fn leader(&self) -> Result<usize, TestEnvError> {
        for (i, member) in self.members.iter().enumerate() {
            if member.process.is_none() {
                continue;
            }
            let mut client = member_client(member).await?;
            let status = client.status().await?;
            if status.leader() == status.header().map_or(0, |h| h.member_id()) {
                return Ok(i);
            }
        }
        Err(TestEnvError::NoEtcdLeader)
    }

    async fn wait_ready_all(&mut self) -> Result<(), TestEnvError> {
        for i in 0..self.members.len() {
            self.wait_ready(i).await?;
        }
        Ok(())
    }

    /// Waits until member `i` answers a linearizable read (so it has a
    /// leader and has caught up enough to serve).
    async fn wait_ready(&mut self, i: usize) -> Result<(), TestEnvError> {
        let started = Instant::now();
        let mut last_error = String::from("not tried yet");
        while started.elapsed() < READY_TIMEOUT {
            let member = &mut self.members[i];
            let process = member.process.as_mut().expect("a started member");
            if let Some(status) = process.exited() {
                return Err(process.exited_early_error(status));
            }
            match member_client(member).await {
                Ok(mut client) => match client.get("health", None).await {
                    Ok(_) => return Ok(()),
                    Err(err) => last_error = err.to_string(),
                },
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let process = self.members[i].process.as_ref().expect("a started member");
        Err(process.not_ready_error(started.elapsed(), last_error))
    }
}

fn connect_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5))
}

async fn member_client(member: &Member) -> Result<etcd_client::Client, TestEnvError> {
    Ok(etcd_client::Client::connect([member.client_url()], Some(connect_options())).await?)
}

/// Ports, flags and logs of `size` members forming one new cluster.
fn plan_members(dir: &Path, size: usize) -> Result<Vec<Member>, TestEnvError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
    let mut peers = Vec::new();
    for i in 0..size {
        let peer_url = format!("http://127.0.0.1:{}", ports::free_port()?);
        peers.push((format!("member-{i}"), peer_url, ports::free_port()?));
    }
    let initial_cluster = peers
        .iter()
        .map(|(name, peer_url, _)| format!("{name}={peer_url}"))
        .collect::<Vec<_>>()
        .join(",");
    let token = format!("testenv-{}", dir.display());
    Ok(peers
        .into_iter()
        .map(|(name, peer_url, client_port)| {
            let client_url = format!("http://127.0.0.1:{client_port}");
            let args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.join(&name).display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={initial_cluster}"),
                format!("--initial-cluster-token={token}"),
                // Test data is throwaway (see EtcdServer::start).
                "--unsafe-no-fsync".to_string(),
                "--log-level=warn".to_string(),
            ];
            Member {
                log: dir.join(format!("{name}.log")),
                name: format!("etcd-{name}"),
                client_port,
                args,
                process: None,
            }
        })
        .collect())
}
