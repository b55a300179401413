//! Keys of the APISIX etcd layout: `<prefix>/<dir>/<id>`.

use std::fmt;
use std::sync::Arc;

/// A directory APISIX reads, in the order writes must reach it: objects that
/// others refer to (ssls, upstreams, plugin configs, consumers, services)
/// before the objects that refer to them (routes, stream routes, global
/// rules). Deletions go in the reverse order. APISIX applies each directory
/// on its own, even within one transaction, so the order is the only thing
/// that keeps a route from pointing at an upstream that is not there yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApisixDir {
    Ssls,
    Upstreams,
    PluginConfigs,
    Consumers,
    Services,
    PluginMetadata,
    Routes,
    StreamRoutes,
    GlobalRules,
}

impl ApisixDir {
    pub const ALL: [ApisixDir; 9] = [
        ApisixDir::Ssls,
        ApisixDir::Upstreams,
        ApisixDir::PluginConfigs,
        ApisixDir::Consumers,
        ApisixDir::Services,
        ApisixDir::PluginMetadata,
        ApisixDir::Routes,
        ApisixDir::StreamRoutes,
        ApisixDir::GlobalRules,
    ];

    /// The directory name under the prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ApisixDir::Ssls => "ssls",
            ApisixDir::Upstreams => "upstreams",
            ApisixDir::PluginConfigs => "plugin_configs",
            ApisixDir::Consumers => "consumers",
            ApisixDir::Services => "services",
            ApisixDir::PluginMetadata => "plugin_metadata",
            ApisixDir::Routes => "routes",
            ApisixDir::StreamRoutes => "stream_routes",
            ApisixDir::GlobalRules => "global_rules",
        }
    }

    pub fn from_name(name: &str) -> Option<ApisixDir> {
        ApisixDir::ALL.into_iter().find(|dir| dir.as_str() == name)
    }

    /// Objects in these directories refer to objects in the others; they are
    /// written after, and deleted before, what they refer to.
    pub fn is_referring(self) -> bool {
        matches!(
            self,
            ApisixDir::Routes | ApisixDir::StreamRoutes | ApisixDir::GlobalRules
        )
    }

    /// Rank in write order (0 first).
    pub fn write_rank(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ApisixDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {key:?} is not under the prefix {prefix:?}")]
    OutsidePrefix { key: String, prefix: String },
    #[error("key {0:?} is not <prefix>/<dir>/<id> with a directory APISIX reads")]
    NotAnObjectKey(String),
    #[error("id {0:?} is not 1..64 characters of [A-Za-z0-9._-]")]
    InvalidId(String),
}

/// A parsed object key: `<prefix>/<dir>/<id>`. Ordered by directory write
/// rank, then id, so a sorted set of keys is already in write order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtcdKey {
    dir: ApisixDir,
    id: Arc<str>,
    full: Arc<str>,
}

impl EtcdKey {
    /// Builds the key of object `id` in `dir` under `prefix` (e.g. `/apisix`).
    pub fn new(prefix: &str, dir: ApisixDir, id: &str) -> Result<EtcdKey, KeyError> {
        if !is_valid_id(id) {
            return Err(KeyError::InvalidId(id.to_string()));
        }
        Ok(EtcdKey {
            dir,
            id: id.into(),
            full: format!("{prefix}/{}/{id}", dir.as_str()).into(),
        })
    }

    /// Parses a stored key. Keys APISIX would not read as one object
    /// (directory placeholders, nested keys, unknown directories) are errors.
    pub fn parse(prefix: &str, key: &str) -> Result<EtcdKey, KeyError> {
        let rest = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| KeyError::OutsidePrefix {
                key: key.to_string(),
                prefix: prefix.to_string(),
            })?;
        let (dir, id) = rest
            .split_once('/')
            .ok_or_else(|| KeyError::NotAnObjectKey(key.to_string()))?;
        let dir =
            ApisixDir::from_name(dir).ok_or_else(|| KeyError::NotAnObjectKey(key.to_string()))?;
        if id.contains('/') {
            return Err(KeyError::NotAnObjectKey(key.to_string()));
        }
        EtcdKey::new(prefix, dir, id)
    }

    pub fn dir(&self) -> ApisixDir {
        self.dir
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for EtcdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// APISIX's id rule (`schema_def.id_schema`): 1..64 of `[a-zA-Z0-9._-]`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_object_keys() {
        let key = EtcdKey::new("/apisix", ApisixDir::Routes, "r1").unwrap();
        assert_eq!(key.as_str(), "/apisix/routes/r1");
        assert_eq!(EtcdKey::parse("/apisix", "/apisix/routes/r1").unwrap(), key);
        assert_eq!(
            EtcdKey::parse("/apisix", "/apisix/plugin_configs/p.1")
                .unwrap()
                .dir(),
            ApisixDir::PluginConfigs
        );
    }

    #[test]
    fn rejects_keys_apisix_would_misread() {
        for bad in [
            "/apisix/routes",
            "/apisix/routes/",
            "/apisix/routes/a/b",
            "/apisix/routes_old/x",
            "/apisix/gen_id",
            "/apisixx/routes/a",
            "/other/routes/a",
        ] {
            assert!(EtcdKey::parse("/apisix", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_follow_apisix_rules() {
        assert!(is_valid_id("a-b_c.D9"));
        assert!(is_valid_id(&"x".repeat(64)));
        assert!(!is_valid_id(&"x".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a b"));
    }

    #[test]
    fn sorted_keys_are_in_write_order() {
        let mut keys = [
            EtcdKey::new("/apisix", ApisixDir::Routes, "a").unwrap(),
            EtcdKey::new("/apisix", ApisixDir::GlobalRules, "a").unwrap(),
            EtcdKey::new("/apisix", ApisixDir::Upstreams, "z").unwrap(),
            EtcdKey::new("/apisix", ApisixDir::Ssls, "z").unwrap(),
        ];
        keys.sort();
        let dirs: Vec<_> = keys.iter().map(|k| k.dir()).collect();
        assert_eq!(
            dirs,
            [
                ApisixDir::Ssls,
                ApisixDir::Upstreams,
                ApisixDir::Routes,
                ApisixDir::GlobalRules
            ]
        );
    }
}
