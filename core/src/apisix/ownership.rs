//! Which keys this operator instance owns.
//!
//! Several writers share one APISIX etcd: the Admin API, people, and other
//! clusters' operators. We only ever overwrite or delete keys we created for
//! our own cluster name, and we recognise them by the id's shape: every id we
//! generate starts with `ao_<cluster>_`. Cluster names are DNS labels (no
//! `_`), so one cluster's marker is never a prefix of another's. The marker
//! is legal in every APISIX id and in consumer usernames (`[a-zA-Z0-9_-]`).

use super::EtcdKey;

/// The owner marker of one operator installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    cluster: String,
    id_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cluster name {0:?} must be a DNS label of at most 20 characters: lowercase letters, digits and '-', starting and ending with a letter or digit"
)]
pub struct InvalidClusterName(pub String);

impl Ownership {
    pub const MAX_CLUSTER_NAME: usize = 20;

    pub fn new(cluster: &str) -> Result<Ownership, InvalidClusterName> {
        let valid = !cluster.is_empty()
            && cluster.len() <= Self::MAX_CLUSTER_NAME
            && cluster
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !cluster.starts_with('-')
            && !cluster.ends_with('-');
        if !valid {
            return Err(InvalidClusterName(cluster.to_string()));
        }
        Ok(Ownership {
            cluster: cluster.to_string(),
            id_prefix: format!("ao_{cluster}_"),
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The prefix every id we generate starts with.
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    pub fn owns_id(&self, id: &str) -> bool {
        id.len() > self.id_prefix.len() && id.starts_with(&self.id_prefix)
    }

    pub fn owns(&self, key: &EtcdKey) -> bool {
        self.owns_id(key.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apisix::ApisixDir;

    #[test]
    fn owns_only_its_own_cluster_ids() {
        let a = Ownership::new("prod").unwrap();
        let b = Ownership::new("prod-eu").unwrap();
        let key = |id: &str| EtcdKey::new("/apisix", ApisixDir::Routes, id).unwrap();
        assert!(a.owns(&key("ao_prod_r1")));
        assert!(!a.owns(&key("ao_prod-eu_r1")));
        assert!(b.owns(&key("ao_prod-eu_r1")));
        assert!(!b.owns(&key("ao_prod_r1")));
        assert!(!a.owns(&key("1")));
        assert!(!a.owns(&key("ao_prod_")));
        assert!(!a.owns(&key("prod_r1")));
    }

    #[test]
    fn cluster_names_are_dns_labels() {
        for good in ["a", "prod", "eu-west-1", &"x".repeat(20)] {
            assert!(Ownership::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "a_b", "-a", "a-", "a.b", &"x".repeat(21)] {
            assert!(Ownership::new(bad).is_err(), "{bad}");
        }
    }
}
