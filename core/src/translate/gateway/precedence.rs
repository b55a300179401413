//! The Gateway API's match precedence as APISIX route priorities.
//!
//! APISIX's router already orders what the spec puts first: a route with a
//! precise hostname before one with a wildcard before one with none
//! (`radixtree_host_uri`), and within a host an exact path before any
//! prefix, a longer prefix before a shorter one (its radix tree). The
//! priority only breaks ties between routes on the same host and path,
//! which is where the spec continues: an exact match before a prefix match
//! of the same path before a regular expression (which APISIX matches under
//! the `/*` prefix), then a method match, then more header matches, then
//! more query parameter matches, then the older route, then the earlier
//! rule of one route. Routes created in the same second with everything
//! else equal are left to APISIX's order (the spec's last tie-breaker,
//! alphabetical order of namespace and name, would make every route's
//! priority depend on every other's).
//!
//! The fields are packed into 47 bits, below the 2^53 that APISIX's Lua
//! numbers hold exactly.

use crate::api::gateway::HttpRouteMatch;

/// Seconds since 2020-01-01T00:00:00Z: routes older than that rank as
/// created then; 30 bits last until 2054.
const EPOCH: i64 = 1_577_836_800;
const AGE_BITS: u32 = 30;
const RULE_BITS: u32 = 4;
const COUNT_BITS: u32 = 5;

/// How a match's path is matched, in ascending precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathBand {
    RegularExpression = 1,
    PathPrefix = 2,
    Exact = 3,
}

/// The priority of one match of rule `rule_index` of a route created at
/// `created` (Unix seconds).
pub fn priority(band: PathBand, matching: &HttpRouteMatch, created: i64, rule_index: usize) -> i64 {
    let capped = |n: usize, bits: u32| (n as i64).min((1 << bits) - 1);
    let age_max = (1i64 << AGE_BITS) - 1;
    let since_epoch = (created - EPOCH).clamp(0, age_max);
    let mut priority = band as i64;
    priority = (priority << 1) | i64::from(matching.method.is_some());
    priority = (priority << COUNT_BITS) | capped(matching.headers.len(), COUNT_BITS);
    priority = (priority << COUNT_BITS) | capped(matching.query_params.len(), COUNT_BITS);
    priority = (priority << AGE_BITS) | (age_max - since_epoch);
    let rule_max = (1i64 << RULE_BITS) - 1;
    (priority << RULE_BITS) | (rule_max - capped(rule_index, RULE_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn matching(method: bool, headers: usize, queries: usize) -> HttpRouteMatch {
        let pairs = |n: usize| -> Vec<serde_json::Value> {
            (0..n)
                .map(|i| json!({"name": format!("n{i}"), "value": "v"}))
                .collect()
        };
        serde_json::from_value(json!({
            "method": if method { Some("GET") } else { None },
            "headers": pairs(headers),
            "queryParams": pairs(queries),
        }))
        .unwrap()
    }

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn the_order_of_the_spec() {
        let plain = matching(false, 0, 0);
        let p = |band, m: &HttpRouteMatch, created, rule| priority(band, m, created, rule);
        assert!(
            p(PathBand::Exact, &plain, NOW, 0)
                > p(PathBand::PathPrefix, &matching(true, 16, 16), NOW - 1000, 0)
        );
        assert!(
            p(PathBand::PathPrefix, &plain, NOW, 0)
                > p(PathBand::RegularExpression, &matching(true, 3, 3), NOW, 0)
        );
        assert!(
            p(PathBand::PathPrefix, &matching(true, 0, 0), NOW, 0)
                > p(PathBand::PathPrefix, &matching(false, 16, 16), NOW, 0)
        );
        assert!(
            p(PathBand::PathPrefix, &matching(false, 2, 0), NOW, 0)
                > p(PathBand::PathPrefix, &matching(false, 1, 16), NOW, 0)
        );
        assert!(
            p(PathBand::PathPrefix, &matching(false, 0, 2), NOW, 0)
                > p(PathBand::PathPrefix, &matching(false, 0, 1), NOW, 0)
        );
        assert!(
            p(PathBand::PathPrefix, &plain, NOW - 1, 5) > p(PathBand::PathPrefix, &plain, NOW, 0),
            "older first"
        );
        assert!(
            p(PathBand::PathPrefix, &plain, NOW, 0) > p(PathBand::PathPrefix, &plain, NOW, 1),
            "earlier rule first"
        );
    }

    proptest! {
        /// Every priority is exact in a double, whatever the input.
        #[test]
        fn fits_in_53_bits(band in 1..=3u8, method: bool, headers in 0..40usize, queries in 0..40usize,
                           created in 0..i64::from(u32::MAX) * 4, rule in 0..64usize) {
            let band = match band { 1 => PathBand::RegularExpression, 2 => PathBand::PathPrefix, _ => PathBand::Exact };
            let value = priority(band, &matching(method, headers, queries), created, rule);
            prop_assert!((0..1i64 << 53).contains(&value));
        }
    }
}
