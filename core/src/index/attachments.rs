//! Which routes attached to which Gateway listeners: each Gateway's
//! `attachedRoutes`, kept as routes are translated (a route change costs
//! its own listeners, never a walk over every route).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{ListenerRef, ObjectKey, UnitKey};

#[derive(Debug, Clone, Default)]
pub struct Attachments {
    by_route: BTreeMap<UnitKey, Vec<ListenerRef>>,
    counts: BTreeMap<ObjectKey, BTreeMap<String, i32>>,
}

impl Attachments {
    /// Records what `route` attaches to now (empty: nothing); returns the
    /// Gateways whose counts changed.
    pub fn set(&mut self, route: &UnitKey, listeners: Vec<ListenerRef>) -> BTreeSet<ObjectKey> {
        let before = match listeners.is_empty() {
            true => self.by_route.remove(route).unwrap_or_default(),
            false => self
                .by_route
                .insert(route.clone(), listeners.clone())
                .unwrap_or_default(),
        };
        if before == listeners {
            return BTreeSet::new();
        }
        let mut touched = BTreeSet::new();
        for (listener, delta) in before
            .iter()
            .map(|l| (l, -1))
            .chain(listeners.iter().map(|l| (l, 1)))
        {
            let counts = self.counts.entry(listener.gateway.clone()).or_default();
            let count = counts.entry(listener.listener.clone()).or_default();
            *count += delta;
            if *count == 0 {
                counts.remove(&listener.listener);
            }
            if counts.is_empty() {
                self.counts.remove(&listener.gateway);
            }
            touched.insert(listener.gateway.clone());
        }
        touched
    }

    /// The routes attached to `listener` of `gateway`.
    pub fn count(&self, gateway: &ObjectKey, listener: &str) -> i32 {
        self.counts
            .get(gateway)
            .and_then(|c| c.get(listener))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(gateway: &str, listener: &str) -> ListenerRef {
        ListenerRef {
            gateway: ObjectKey::new("ns", gateway),
            listener: listener.into(),
        }
    }

    #[test]
    fn counts_follow_each_route() {
        let mut book = Attachments::default();
        let (a, b) = (
            UnitKey::new("HTTPRoute", Some("ns"), "a"),
            UnitKey::new("HTTPRoute", Some("ns"), "b"),
        );
        let gw = ObjectKey::new("ns", "gw");
        assert_eq!(
            book.set(&a, vec![at("gw", "http"), at("gw", "https")])
                .len(),
            1
        );
        book.set(&b, vec![at("gw", "http")]);
        assert_eq!((book.count(&gw, "http"), book.count(&gw, "https")), (2, 1));
        assert!(
            book.set(&b, vec![at("gw", "http")]).is_empty(),
            "unchanged touches nothing"
        );
        book.set(&a, vec![at("other", "http")]);
        assert_eq!((book.count(&gw, "http"), book.count(&gw, "https")), (1, 0));
        assert_eq!(book.count(&ObjectKey::new("ns", "other"), "http"), 1);
        book.set(&a, Vec::new());
        book.set(&b, Vec::new());
        assert!(book.by_route.is_empty() && book.counts.is_empty());
    }
}
