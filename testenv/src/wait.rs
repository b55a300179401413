//! Waiting without depending on timing: poll with a deadline.

use std::future::Future;
use std::time::Duration;

/// Polls `probe` every 50 ms until it returns `Some`, or panics naming
/// `what` after `limit`. Tests use generous limits: the deadline only bounds
/// a hang, it never decides a pass.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
