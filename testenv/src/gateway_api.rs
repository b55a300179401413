//! The Gateway API CRDs of the pinned release (`GATEWAY_API_VERSION` in
//! `testenv/versions.env`): the standard channel's GatewayClass, Gateway,
//! HTTPRoute, GRPCRoute, TLSRoute, ReferenceGrant and BackendTLSPolicy, and
//! the experimental channel's TCPRoute and UDPRoute, as `testenv/provision.sh`
//! copies them from the `sigs.k8s.io/gateway-api` Go module into the cache.

use serde_json::Value;

use crate::{Binaries, TestEnvError, Versions, install::parse_documents};

/// The CRD documents, ready for [`crate::apply_all`]; an error naming
/// `make provision` when they are not in the cache.
pub fn crds() -> Result<Vec<Value>, TestEnvError> {
    let version = Versions::pinned()?.gateway_api;
    let dir = Binaries::cache_dir().join(format!("gateway-api-{version}"));
    let missing = || TestEnvError::MissingBinary {
        name: "the Gateway API CRDs",
        version: version.clone(),
        path: dir.clone(),
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|_| missing())?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(missing());
    }
    let mut documents = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| TestEnvError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        documents.extend(parse_documents(&text, &path.display().to_string())?);
    }
    Ok(documents)
}
