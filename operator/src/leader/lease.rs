//! Leader election on a Lease: resourceVersion-checked acquire, renew and
//! release; the acquisition increments `leaseTransitions` in the same
//! update; every API call has a timeout. The decisions (take, renew, follow,
//! step down) are the pure state machine of `apisix_operator_core::election`,
//! unit-tested there; this file performs the calls.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fence::{self, FenceKey};
use apisix_operator_core::election::{self, Action, ElectorState, LeaseView, Timings};

/// Lease settings. The defaults are short on purpose: the fence, not the
/// Lease, guarantees a single writer, so the Lease only decides how fast a
/// successor takes over after a crash (lease duration + up to one retry
/// period). A short Lease costs more renewals (one PUT per retry period) and,
/// under an overloaded API server, an occasional needless leader change,
/// which costs a fence claim and a diff, nothing more.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// POD_NAME, else the hostname.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);
    pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(3);
    pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(1);

    pub fn new(name: &str, namespace: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_duration: Self::DEFAULT_DURATION,
            renew_deadline: Self::DEFAULT_RENEW_DEADLINE,
            retry_period: Self::DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks the relations client-go also requires.
    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err("the lease identity is empty (set POD_NAME)".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "lease duration {:?} must be longer than the renew deadline {:?}",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "renew deadline {:?} must be longer than the retry period {:?}",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("the lease duration must be at least 1s".into());
        }
        Ok(())
    }

    /// Each API call must end well within one retry period.
    fn api_timeout(&self) -> Duration {
        self.retry_period.max(Duration::from_millis(500))
    }
}

/// What this replica knows of the leadership, published on every change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    /// We hold the Lease and renewed it within the renew deadline.
    pub leading: bool,
    /// The Lease's holder as last seen.
    pub holder: Option<String>,
    /// While leading: the `leaseTransitions` of our acquisition, our fence token.
    pub token: i64,
}

enum Command {
    /// Give the Lease up (fence lost): release it if we still hold it.
    StepDown,
    /// SIGTERM: never take the Lease again (keep leading until released).
    Retire,
    /// Release and stop (shutdown).
    Release(tokio::sync::oneshot::Sender<()>),
}

/// The handle other tasks use: the leadership signal, and commands.
#[derive(Clone)]
pub struct LeaderHandle {
    state: watch::Receiver<Leadership>,
    commands: mpsc::Sender<Command>,
}

impl LeaderHandle {
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.state.clone()
    }

    pub fn current(&self) -> Leadership {
        self.state.borrow().clone()
    }

    /// Asks the elector to step down (our fence claim was superseded).
    pub async fn step_down(&self) {
        let _ = self.commands.send(Command::StepDown).await;
    }

    /// Stops campaigning (the replica is shutting down): the Lease is never
    /// taken again, so it cannot be won during shutdown only to be handed
    /// straight back.
    pub async fn retire(&self) {
        let _ = self.commands.send(Command::Retire).await;
    }

    /// Releases the Lease so a successor takes over at once, and stops the
    /// elector. Returns when the release was attempted.
    pub async fn release(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Release(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The election loop of one replica: performs the Lease calls that
/// [`election::decide`] asks for and feeds their results back.
pub struct LeaseElector {
    config: LeaseConfig,
    api: Api<Lease>,
    etcd: etcd_client::Client,
    fence: FenceKey,
    state: watch::Sender<Leadership>,
    elector: ElectorState,
    /// Whether the etcd mirror is loaded and watching (see
    /// [`LeaseElector::with_etcd_health`]).
    etcd_health: Option<watch::Receiver<bool>>,
}

#[derive(Debug, thiserror::Error)]
enum LeaseCallError {
    #[error("kube API call timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("reading the fence to seed leaseTransitions: {0}")]
    Fence(#[from] fence::FenceError),
}

impl LeaseCallError {
    fn is_conflict(&self) -> bool {
        matches!(self, LeaseCallError::Kube(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists())
    }
}

impl LeaseElector {
    pub fn new(
        config: LeaseConfig,
        client: kube::Client,
        etcd: etcd_client::Client,
        fence: FenceKey,
    ) -> LeaseElector {
        let api = Api::namespaced(client, &config.namespace);
        let (state, _) = watch::channel(Leadership::default());
        LeaseElector {
            config,
            api,
            etcd,
            fence,
            state,
            elector: ElectorState::default(),
            etcd_health: None,
        }
    }

    /// Follows etcd's reachability (true while the mirror is loaded and
    /// watching): without it the Lease is not taken, and a leader that has
    /// gone the renew deadline without it hands the Lease over.
    pub fn with_etcd_health(mut self, health: watch::Receiver<bool>) -> LeaseElector {
        self.etcd_health = Some(health);
        self
    }

    fn timings(&self) -> Timings {
        Timings {
            lease_duration: self.config.lease_duration,
            renew_deadline: self.config.renew_deadline,
        }
    }

    /// Starts the loop; the returned handle carries the leadership signal.
    pub fn spawn(self) -> (LeaderHandle, tokio::task::JoinHandle<()>) {
        let (commands, inbox) = mpsc::channel(8);
        let handle = LeaderHandle {
            state: self.state.subscribe(),
            commands,
        };
        let task = tokio::spawn(self.run(inbox));
        (handle, task)
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        // Watching the Lease lets a follower react at once to a release, and
        // time another holder's expiry from the moment of its last renewal
        // instead of from our next poll.
        let selector = format!("metadata.name={}", self.config.name);
        let mut events = watcher(
            self.api.clone(),
            watcher::Config::default().fields(&selector),
        )
        .default_backoff()
        .boxed();
        let mut last_step = Instant::now();
        let mut next_step = Instant::now();
        loop {
            let wake = self.next_wake(next_step, last_step);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    self.step().await;
                    last_step = Instant::now();
                    next_step = last_step + self.config.retry_period;
                }
                event = events.next() => {
                    let urgent = match event {
                        Some(Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease))) => {
                            self.elector.urgent(&self.config.identity, &view_of(&lease, self.config.lease_duration))
                        }
                        Some(Ok(watcher::Event::Delete(_))) => self.elector.leading.is_none(),
                        _ => false,
                    };
                    if urgent {
                        self.step().await;
                        last_step = Instant::now();
                        next_step = last_step + self.config.retry_period;
                    }
                }
                command = inbox.recv() => match command {
                    Some(Command::StepDown) => {
                        tracing::warn!(identity = %self.config.identity, "stepping down: the fence was claimed by a newer leader");
                        self.release_lease().await;
                        self.elector.lost_fence(std::time::Instant::now(), self.config.lease_duration);
                    }
                    Some(Command::Retire) => self.elector.retire(),
                    Some(Command::Release(done)) => {
                        self.elector.retire();
                        self.release_lease().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.release_lease().await;
                        return;
                    }
                }
            }
        }
    }

    /// When to act next: the next poll, or for a follower the moment the
    /// holder's Lease expires, whichever comes first (but never sooner than a
    /// quarter retry period after the last attempt, so errors do not spin).
    fn next_wake(&self, next_step: Instant, last_step: Instant) -> Instant {
        let earliest = last_step + self.config.retry_period / 4;
        let expiry = self
            .elector
            .expiry(self.config.lease_duration)
            .map_or(next_step, Instant::from_std);
        next_step.min(expiry).max(earliest)
    }

    fn publish(&self, holder: Option<String>) {
        let next = Leadership {
            leading: self.elector.leading.is_some(),
            holder,
            token: self.elector.leading.unwrap_or(0),
        };
        self.state.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            if current.leading != next.leading {
                if next.leading {
                    tracing::info!(identity = %self.config.identity, token = next.token, "became leader");
                } else {
                    tracing::warn!(identity = %self.config.identity, holder = ?next.holder, "no longer leader");
                }
            }
            *current = next;
            true
        });
    }

    /// One election step: read the Lease, decide, act.
    async fn step(&mut self) {
        if let Some(health) = &self.etcd_health {
            let reachable = *health.borrow();
            self.elector
                .etcd_reachable(reachable, std::time::Instant::now());
        }
        if election::must_hand_over(self.timings(), &self.elector, std::time::Instant::now()) {
            tracing::warn!(identity = %self.config.identity, "handing the lease over: etcd has been unreachable past the renew deadline");
            self.release_lease().await;
            self.elector
                .lost_fence(std::time::Instant::now(), self.config.lease_duration);
            return;
        }
        let lease = match self.call(self.api.get_opt(&self.config.name)).await {
            Ok(lease) => lease,
            Err(err) => {
                tracing::debug!(identity = %self.config.identity, error = %err, "reading the lease failed");
                self.step_down_if_overdue();
                return;
            }
        };
        let view = lease
            .as_ref()
            .map(|l| view_of(l, self.config.lease_duration));
        let now = std::time::Instant::now();
        let action = election::decide(
            self.timings(),
            &self.config.identity,
            &mut self.elector,
            view.as_ref(),
            now,
        );
        let result = match (action, lease) {
            (Action::Create, _) => self.create().await,
            (Action::Acquire { transitions }, Some(lease)) => {
                self.acquire(lease, transitions).await
            }
            (Action::Renew, Some(lease)) => self.renew(lease).await,
            (Action::Follow { holder }, _) => {
                self.publish(holder);
                Ok(())
            }
            (Action::StepDown { holder }, _) => {
                self.elector.stopped_leading();
                self.publish(holder);
                Ok(())
            }
            // Acquire and Renew are only decided on a Lease that exists.
            (Action::Acquire { .. } | Action::Renew, None) => Ok(()),
        };
        if let Err(err) = result {
            tracing::debug!(identity = %self.config.identity, error = %err, "lease call failed");
            self.step_down_if_overdue();
        }
    }

    /// A leader that could not renew within the renew deadline (the API
    /// server may be unreachable) steps down on its own.
    fn step_down_if_overdue(&mut self) {
        if election::overdue(self.timings(), &self.elector, std::time::Instant::now()) {
            tracing::warn!(identity = %self.config.identity, "could not renew the lease within the renew deadline");
            self.elector.stopped_leading();
            let holder = self.state.borrow().holder.clone();
            self.publish(holder);
        }
    }

    /// The term to acquire with (see [`election::next_term`]).
    async fn next_term(&mut self, transitions: i64) -> Result<i64, LeaseCallError> {
        let timeout = self.config.api_timeout();
        let fenced = fence::read_token(&mut self.etcd, &self.fence, timeout)
            .await?
            .unwrap_or(0);
        Ok(election::next_term(transitions, fenced, &self.elector))
    }

    fn spec_for(&self, token: i64, acquire_time: MicroTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            lease_transitions: Some(i32::try_from(token).unwrap_or(i32::MAX)),
            acquire_time: Some(acquire_time),
            renew_time: Some(now()),
            ..Default::default()
        }
    }

    async fn create(&mut self) -> Result<(), LeaseCallError> {
        let token = self.next_term(0).await?;
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(self.spec_for(token, now())),
        };
        match self
            .call(self.api.create(&PostParams::default(), &lease))
            .await
        {
            Ok(_) => {
                self.won(token);
                Ok(())
            }
            Err(err) if err.is_conflict() => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn acquire(&mut self, mut lease: Lease, transitions: i64) -> Result<(), LeaseCallError> {
        let token = self.next_term(transitions).await?;
        lease.spec = Some(self.spec_for(token, now()));
        // `replace` sends the resourceVersion we read: if anyone changed the
        // Lease since, the API server answers 409 and we stay a follower.
        match self
            .call(
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => {
                self.won(token);
                Ok(())
            }
            Err(err) if err.is_conflict() => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn won(&mut self, token: i64) {
        self.elector.won(token, std::time::Instant::now());
        self.publish(Some(self.config.identity.clone()));
    }

    async fn renew(&mut self, mut lease: Lease) -> Result<(), LeaseCallError> {
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        match self
            .call(
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => {
                self.elector.renewed(std::time::Instant::now());
                Ok(())
            }
            Err(err) if err.is_conflict() => {
                // Someone else changed the Lease: we are not leading any more.
                self.elector.stopped_leading();
                self.publish(None);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Clears the holder (resourceVersion-checked) so a successor need not
    /// wait for the Lease to expire.
    async fn release_lease(&mut self) {
        let was_leading = self.elector.leading.is_some();
        self.elector.stopped_leading();
        self.publish(None);
        if !was_leading {
            return;
        }
        let result = async {
            let Some(mut lease) = self.call(self.api.get_opt(&self.config.name)).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = None;
            spec.acquire_time = None;
            self.call(
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
            .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(identity = %self.config.identity, "released the lease"),
            Err(err) => {
                tracing::warn!(identity = %self.config.identity, error = %err, "could not release the lease")
            }
        }
    }

    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaseCallError> {
        let timeout = self.config.api_timeout();
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(LeaseCallError::Timeout(timeout)),
        }
    }
}

/// What the election reads of a Lease.
fn view_of(lease: &Lease, default_duration: Duration) -> LeaseView {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseView {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        transitions: i64::from(spec.lease_transitions.unwrap_or(0)),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        duration: lease_duration(&spec.lease_duration_seconds, default_duration),
    }
}

fn lease_duration(seconds: &Option<i32>, default: Duration) -> Duration {
    seconds
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
        .unwrap_or(default)
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The default identity: `POD_NAME`, else the hostname.
pub fn default_identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "apisix-operator".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_short_and_consistent() {
        let config = LeaseConfig::new("l", "ns", "me");
        assert!(config.validate().is_ok());
        assert!(config.lease_duration < Duration::from_secs(15));
    }

    #[test]
    fn inconsistent_timings_are_rejected() {
        let mut config = LeaseConfig::new("l", "ns", "me");
        config.renew_deadline = config.lease_duration;
        assert!(config.validate().unwrap_err().contains("renew deadline"));
        let mut config = LeaseConfig::new("l", "ns", "me");
        config.retry_period = config.renew_deadline;
        assert!(config.validate().unwrap_err().contains("retry period"));
        let mut config = LeaseConfig::new("l", "ns", "");
        config.identity.clear();
        assert!(config.validate().is_err());
    }
}
