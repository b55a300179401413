//! Hostname intersection of a listener and a route, as the Gateway API
//! specifies it: a wildcard `*.example.com` matches any name with one or
//! more labels before `example.com`, never `example.com` itself; a route
//! attaches to a listener only where their hostnames intersect, and then
//! serves the more specific of each intersecting pair.

/// The hostnames a route serves through one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Every hostname (neither the listener nor the route restricts it).
    Any,
    /// These (sorted, deduplicated); empty means they do not intersect.
    Only(Vec<String>),
}

impl Served {
    pub fn is_empty(&self) -> bool {
        matches!(self, Served::Only(hosts) if hosts.is_empty())
    }

    /// The union of what two listeners serve to the same route.
    pub fn union(self, other: Served) -> Served {
        match (self, other) {
            (Served::Any, _) | (_, Served::Any) => Served::Any,
            (Served::Only(mut a), Served::Only(b)) => {
                a.extend(b);
                a.sort();
                a.dedup();
                Served::Only(a)
            }
        }
    }
}

/// What `route` (its `spec.hostnames`) serves through a listener whose
/// hostname is `listener` (`None`: any).
pub fn intersect(listener: Option<&str>, route: &[String]) -> Served {
    let mut hosts: Vec<String> = match (listener, route.is_empty()) {
        (None, true) => return Served::Any,
        (None, false) => route.to_vec(),
        (Some(listener), true) => vec![listener.to_string()],
        (Some(listener), false) => route
            .iter()
            .filter_map(|host| more_specific(listener, host))
            .map(str::to_string)
            .collect(),
    };
    hosts.sort();
    hosts.dedup();
    Served::Only(hosts)
}

/// The more specific of two hostnames when one matches the other, else
/// `None`.
fn more_specific<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    if a.eq_ignore_ascii_case(b) {
        return Some(b);
    }
    if matches(a, b) {
        Some(b)
    } else if matches(b, a) {
        Some(a)
    } else {
        None
    }
}

/// Whether `pattern` (precise or `*.suffix`) matches every name that
/// `name` (precise or `*.suffix`) stands for.
pub fn matches(pattern: &str, name: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix('*') else {
        return pattern.eq_ignore_ascii_case(name);
    };
    // `suffix` is `.example.com`: the name needs at least one more label.
    let name_body = name.strip_prefix('*').unwrap_or(name);
    name_body.len() > suffix.len()
        && name_body
            .get(name_body.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        && !name_body[..name_body.len() - suffix.len()].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn only(hosts: &[&str]) -> Served {
        Served::Only(hosts.iter().map(|h| h.to_string()).collect())
    }

    fn route(hosts: &[&str]) -> Vec<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn the_spec_examples() {
        // From the Gateway API's HTTPRoute hostnames documentation.
        assert_eq!(intersect(None, &[]), Served::Any);
        assert_eq!(
            intersect(Some("foo.example.com"), &[]),
            only(&["foo.example.com"])
        );
        assert_eq!(
            intersect(
                Some("*.example.com"),
                &route(&["foo.example.com", "bar.other.org"])
            ),
            only(&["foo.example.com"])
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &route(&["*.example.com"])),
            only(&["foo.example.com"])
        );
        assert_eq!(
            intersect(Some("*.example.com"), &route(&["*.foo.example.com"])),
            only(&["*.foo.example.com"])
        );
        assert_eq!(
            intersect(Some("*.foo.example.com"), &route(&["*.example.com"])),
            only(&["*.foo.example.com"])
        );
        assert!(intersect(Some("*.example.com"), &route(&["example.com"])).is_empty());
        assert!(intersect(Some("a.example.com"), &route(&["b.example.com"])).is_empty());
        assert_eq!(
            intersect(Some("*.example.com"), &route(&["a.b.example.com"])),
            only(&["a.b.example.com"]),
            "a wildcard matches more than one label"
        );
        assert_eq!(
            intersect(Some("Foo.Example.com"), &route(&["foo.example.com"])),
            only(&["foo.example.com"])
        );
    }

    #[test]
    fn union_of_listeners() {
        assert_eq!(only(&["a"]).union(only(&["b", "a"])), only(&["a", "b"]));
        assert_eq!(only(&["a"]).union(Served::Any), Served::Any);
    }

    fn hostname() -> impl Strategy<Value = String> {
        (
            prop::bool::ANY,
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
        )
            .prop_map(|(wild, labels)| {
                let body = labels.join(".");
                if wild { format!("*.{body}") } else { body }
            })
    }

    fn concrete(host: &str) -> String {
        host.replace('*', "x")
    }

    proptest! {
        /// Whatever the intersection serves is matched by both sides: a
        /// concrete name of each served host is accepted by the listener and
        /// by some route hostname.
        #[test]
        fn served_hosts_satisfy_both(listener in hostname(), hosts in prop::collection::vec(hostname(), 1..4)) {
            if let Served::Only(served) = intersect(Some(&listener), &hosts) {
                for host in served {
                    let name = concrete(&host);
                    prop_assert!(matches(&listener, &name) || listener == name);
                    prop_assert!(hosts.iter().any(|h| matches(h, &name) || *h == name));
                }
            }
        }

        /// Intersection is symmetric for one hostname on each side.
        #[test]
        fn symmetric(a in hostname(), b in hostname()) {
            prop_assert_eq!(
                intersect(Some(&a), std::slice::from_ref(&b)),
                intersect(Some(&b), std::slice::from_ref(&a))
            );
        }
    }
}
