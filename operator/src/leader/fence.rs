//! The fence key in etcd (DESIGN.md §3.1).
//!
//! Claiming stores a token that only grows: the Lease's `leaseTransitions`
//! of the acquisition. A claim succeeds only if the stored token is smaller
//! (or the key is absent), so a replica frozen between winning the Lease and
//! claiming the fence loses to anyone who won later.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

/// Width of the zero-padded token, so stored values also sort numerically.
const TOKEN_WIDTH: usize = 20;

/// Where the fence lives: outside the APISIX prefix, so APISIX's start-up
/// range read of the prefix never sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceKey(String);

impl FenceKey {
    /// `<fence_prefix>/<cluster>/leader`.
    pub fn new(fence_prefix: &str, cluster: &str) -> FenceKey {
        FenceKey(format!(
            "{}/{cluster}/leader",
            fence_prefix.trim_end_matches('/')
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A successful claim: the token and the revision at which it was stored.
/// Every write transaction compares `mod_revision(fence) == revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceClaim {
    pub key: FenceKey,
    pub token: i64,
    pub revision: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error(
        "fence {key} holds token {stored}, not below our token {token}: a newer leader claimed it"
    )]
    Stale {
        key: String,
        token: i64,
        stored: i64,
    },
    #[error("fence {key} holds a value that is not a token: {value:?}")]
    Corrupt { key: String, value: String },
    #[error("etcd call on fence {key} timed out after {timeout:?}")]
    Timeout { key: String, timeout: Duration },
    #[error("etcd error on fence {key}: {source}")]
    Etcd {
        key: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("fence {key} changed under us {attempts} times in a row")]
    Contended { key: String, attempts: usize },
}

/// Reads the stored token, if any.
pub async fn read_token(
    client: &mut etcd_client::Client,
    key: &FenceKey,
    timeout: Duration,
) -> Result<Option<i64>, FenceError> {
    Ok(read(client, key, timeout).await?.map(|stored| stored.token))
}

/// The stored fence: token, holder and mod revision.
struct StoredFence {
    token: i64,
    holder: String,
    mod_revision: i64,
}

async fn read(
    client: &mut etcd_client::Client,
    key: &FenceKey,
    timeout: Duration,
) -> Result<Option<StoredFence>, FenceError> {
    let response = with_timeout(key, timeout, client.get(key.as_str(), None)).await?;
    let Some(kv) = response.kvs().first() else {
        return Ok(None);
    };
    let value = String::from_utf8_lossy(kv.value());
    let (token, holder) = parse(&value).ok_or_else(|| FenceError::Corrupt {
        key: key.as_str().to_string(),
        value: value.to_string(),
    })?;
    Ok(Some(StoredFence {
        token,
        holder: holder.to_string(),
        mod_revision: kv.mod_revision(),
    }))
}

/// Claims the fence with `token` for `identity`.
pub async fn claim(
    client: &mut etcd_client::Client,
    key: &FenceKey,
    token: i64,
    identity: &str,
    timeout: Duration,
) -> Result<FenceClaim, FenceError> {
    const ATTEMPTS: usize = 5;
    let value = format!("{token:0TOKEN_WIDTH$}:{identity}");
    for _ in 0..ATTEMPTS {
        // Compare-and-swap on what we read: absent, or exactly the revision
        // whose smaller token we saw.
        let guard = match read(client, key, timeout).await? {
            None => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
            // Our own claim of this very term, still in place (the engine
            // re-entered its leading loop): it is still valid as it stands.
            Some(stored) if stored.token == token && stored.holder == identity => {
                return Ok(FenceClaim {
                    key: key.clone(),
                    token,
                    revision: stored.mod_revision,
                });
            }
            Some(stored) if stored.token >= token => {
                return Err(FenceError::Stale {
                    key: key.as_str().to_string(),
                    token,
                    stored: stored.token,
                });
            }
            Some(stored) => {
                Compare::mod_revision(key.as_str(), CompareOp::Equal, stored.mod_revision)
            }
        };
        let txn =
            Txn::new()
                .when([guard])
                .and_then([TxnOp::put(key.as_str(), value.clone(), None)]);
        let response = with_timeout(key, timeout, client.txn(txn)).await?;
        if response.succeeded() {
            let revision = response.header().map(|h| h.revision()).unwrap_or_default();
            return Ok(FenceClaim {
                key: key.clone(),
                token,
                revision,
            });
        }
    }
    Err(FenceError::Contended {
        key: key.as_str().to_string(),
        attempts: ATTEMPTS,
    })
}

/// `<token>:<holder>`.
fn parse(value: &str) -> Option<(i64, &str)> {
    let (token, holder) = value.split_once(':')?;
    Some((token.parse().ok()?, holder))
}

async fn with_timeout<T>(
    key: &FenceKey,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, FenceError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(FenceError::Etcd {
            key: key.as_str().to_string(),
            source,
        }),
        Err(_) => Err(FenceError::Timeout {
            key: key.as_str().to_string(),
            timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_sort_numerically() {
        let a = format!("{:0TOKEN_WIDTH$}:x", 9);
        let b = format!("{:0TOKEN_WIDTH$}:a", 10);
        assert!(a < b);
        assert_eq!(parse(&a), Some((9, "x")));
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse("12"), None);
    }

    #[test]
    fn the_fence_is_outside_the_apisix_prefix() {
        let key = FenceKey::new("/operator/apisix/", "prod");
        assert_eq!(key.as_str(), "/operator/apisix/prod/leader");
        assert!(!key.as_str().starts_with("/apisix"));
    }
}
