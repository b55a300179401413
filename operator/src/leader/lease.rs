//! Leader election on a Lease: resourceVersion-checked acquire, renew and
//! release; the acquisition increments `leaseTransitions` in the same
//! update; every API call has a timeout; a leader that cannot renew within
//! the renew deadline steps down on its own.
//!
//! Expiry of another holder's Lease is judged client-go style, by how long
//! the Lease has gone unchanged on *our* monotonic clock, so clock skew
//! between nodes does not matter.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fence::{self, FenceKey};

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

    /// Releases the Lease so a successor takes over at once, and stops the
    /// elector. Returns when the release was attempted.
    pub async fn release(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Release(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The election loop of one replica.
pub struct LeaseElector {
    config: LeaseConfig,
    api: Api<Lease>,
    etcd: etcd_client::Client,
    fence: FenceKey,
    state: watch::Sender<Leadership>,
    /// The Lease's resourceVersion, when we first saw it, and its duration:
    /// another holder's Lease expires when it stays unchanged that long.
    observed: Option<(String, Instant, Duration)>,
    /// While leading: the last successful renewal.
    renewed_at: Option<Instant>,
    /// After stepping down because of the fence: do not re-acquire before.
    hold_off_until: Option<Instant>,
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
            observed: None,
            renewed_at: None,
            hold_off_until: None,
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
                        Some(Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease))) => self.observe(&lease),
                        Some(Ok(watcher::Event::Delete(_))) => !self.state.borrow().leading,
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
                        self.hold_off_until = Some(Instant::now() + self.config.lease_duration);
                    }
                    Some(Command::Release(done)) => {
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
        let expiry = match (&self.observed, self.state.borrow().leading) {
            (Some((_, since, duration)), false) => *since + *duration + Duration::from_millis(1),
            _ => next_step,
        };
        next_step.min(expiry).max(earliest)
    }

    /// Records a Lease seen on the watch; true when it calls for acting now:
    /// a follower seeing the Lease released, or a leader seeing another holder.
    fn observe(&mut self, lease: &Lease) -> bool {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let duration = lease_duration(&spec.lease_duration_seconds, self.config.lease_duration);
        if self
            .observed
            .as_ref()
            .is_none_or(|(seen, _, _)| *seen != version)
        {
            self.observed = Some((version, Instant::now(), duration));
        }
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        if self.state.borrow().leading {
            !ours
        } else {
            holder.is_none()
        }
    }

    fn publish(&self, leading: bool, holder: Option<String>, token: i64) {
        let next = Leadership {
            leading,
            holder,
            token: if leading { token } else { 0 },
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

    async fn step(&mut self) {
        let leading = self.state.borrow().leading;
        let result = self.try_step(leading).await;
        if let Err(err) = &result {
            tracing::debug!(identity = %self.config.identity, error = %err, "lease call failed");
        }
        if leading {
            // Step down on our own when the renew deadline passed without a
            // successful renewal (the API server may be unreachable).
            let overdue = self
                .renewed_at
                .is_none_or(|at| at.elapsed() > self.config.renew_deadline);
            if overdue && self.state.borrow().leading {
                tracing::warn!(identity = %self.config.identity, "could not renew the lease within the renew deadline");
                self.renewed_at = None;
                let holder = self.state.borrow().holder.clone();
                self.publish(false, holder, 0);
            }
        }
    }

    async fn try_step(&mut self, leading: bool) -> Result<(), LeaseCallError> {
        let lease = self.call(self.api.get_opt(&self.config.name)).await?;
        let Some(lease) = lease else {
            if !self.holding_off() {
                self.create().await?;
            }
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let transitions = i64::from(spec.lease_transitions.unwrap_or(0));
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let ours = holder.as_deref() == Some(self.config.identity.as_str());

        if leading {
            let token = self.state.borrow().token;
            if ours && transitions == token {
                self.renew(lease).await?;
            } else {
                self.renewed_at = None;
                self.publish(false, holder, 0);
            }
            return Ok(());
        }

        let duration = lease_duration(&spec.lease_duration_seconds, self.config.lease_duration);
        let unchanged_since = match &self.observed {
            Some((seen, since, _)) if *seen == version => *since,
            _ => {
                let now = Instant::now();
                self.observed = Some((version.clone(), now, duration));
                now
            }
        };
        let expired = unchanged_since.elapsed() > duration;
        // Our own name on a Lease we do not lead is a previous life of this
        // replica (a restart): take it over with a new term right away.
        if (holder.is_none() || ours || expired) && !self.holding_off() {
            self.acquire(lease, transitions).await?;
        } else {
            self.publish(false, holder, 0);
        }
        Ok(())
    }

    fn holding_off(&self) -> bool {
        self.hold_off_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// The next token: above both the Lease's transitions and the fence's
    /// stored token, so a deleted and recreated Lease (whose count restarts
    /// at 0) still produces tokens the fence accepts.
    async fn next_token(&mut self, transitions: i64) -> Result<i64, LeaseCallError> {
        let timeout = self.config.api_timeout();
        let fenced = fence::read_token(&mut self.etcd, &self.fence, timeout)
            .await?
            .unwrap_or(0);
        Ok(transitions.max(fenced) + 1)
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
        let token = self.next_token(0).await?;
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
        let token = self.next_token(transitions).await?;
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
        self.renewed_at = Some(Instant::now());
        self.observed = None;
        self.publish(true, Some(self.config.identity.clone()), token);
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
                self.renewed_at = Some(Instant::now());
                Ok(())
            }
            Err(err) if err.is_conflict() => {
                // Someone else changed the Lease: we are not leading any more.
                self.renewed_at = None;
                self.publish(false, None, 0);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Clears the holder (resourceVersion-checked) so a successor need not
    /// wait for the Lease to expire.
    async fn release_lease(&mut self) {
        let was_leading = self.state.borrow().leading;
        self.renewed_at = None;
        self.publish(false, None, 0);
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
