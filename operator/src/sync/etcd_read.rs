//! Consistent, paginated reads of the APISIX prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::GetOptions;

use super::{MirrorState, MirroredKey};
use crate::apisix::StoredValue;

/// Keys per page: small enough that a page of large values stays far below
/// the client's 4 MiB message limit.
pub const PAGE_SIZE: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("etcd read of {prefix} timed out after {timeout:?}")]
    Timeout { prefix: String, timeout: Duration },
    #[error("etcd read of {prefix} failed: {source}")]
    Etcd {
        prefix: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd response without a header")]
    NoHeader,
}

impl ReadError {
    /// The revision we pinned was compacted away mid-list: start over.
    pub fn is_compacted(&self) -> bool {
        matches!(self, ReadError::Etcd { source: etcd_client::Error::GRpcStatus(status), .. }
            if status.code() == tonic::Code::OutOfRange)
    }
}

/// The range end that covers every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The directory part APISIX objects live under: `<prefix>/`.
pub fn objects_prefix(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// Lists every key under `<prefix>/` at one pinned revision, page by page.
pub async fn list_prefix(
    client: &mut etcd_client::Client,
    prefix: &str,
    timeout: Duration,
) -> Result<MirrorState, ReadError> {
    let start_prefix = objects_prefix(prefix);
    let end = prefix_end(&start_prefix);
    let mut start = start_prefix.as_bytes().to_vec();
    let mut revision = 0;
    let mut keys = BTreeMap::new();
    loop {
        let mut options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(PAGE_SIZE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let response =
            match tokio::time::timeout(timeout, client.get(start.clone(), Some(options))).await {
                Ok(Ok(response)) => response,
                Ok(Err(source)) => {
                    return Err(ReadError::Etcd {
                        prefix: prefix.to_string(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ReadError::Timeout {
                        prefix: prefix.to_string(),
                        timeout,
                    });
                }
            };
        if revision == 0 {
            revision = response.header().ok_or(ReadError::NoHeader)?.revision();
        }
        for kv in response.kvs() {
            keys.insert(
                String::from_utf8_lossy(kv.key()).into_owned(),
                MirroredKey {
                    value: StoredValue::parse(kv.value()),
                    mod_revision: kv.mod_revision(),
                    create_revision: kv.create_revision(),
                },
            );
        }
        match response.kvs().last() {
            Some(last) if response.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => break,
        }
    }
    Ok(MirrorState::from_list(keys, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_covers_the_prefix() {
        assert_eq!(prefix_end("/apisix/"), b"/apisix0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(objects_prefix("/apisix"), "/apisix/");
        assert_eq!(objects_prefix("/apisix/"), "/apisix/");
    }
}
