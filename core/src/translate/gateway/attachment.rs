//! Route attachment: which listeners of which Gateways a route's
//! `parentRefs` attach it to, by the spec's rules (the parent Gateway's
//! class is ours; `sectionName` and `port` narrow the listeners; the
//! listener admits the route's kind and namespace; their hostnames
//! intersect), and why not when they do not.

use std::collections::BTreeSet;

use super::hostnames::{self, Served};
use super::listeners::{self, ListenerState};
use super::{GROUP, GatewayKind, Verdict, class};
use crate::api::gateway::{Gateway, ParentRef};
use crate::model::{Dependency, ObjectKey, SourceKind, UnitDeps};
use crate::translate::TranslateInput;

/// The outcome of one `parentRef` whose Gateway is ours.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    /// As the route gave it (status echoes it).
    pub parent_ref: ParentRef,
    pub gateway: ObjectKey,
    pub accepted: Verdict,
    /// What the route serves through this parent (when accepted).
    pub served: Served,
    /// `http` and/or `https`: the schemes of the listeners it attached to.
    pub schemes: BTreeSet<&'static str>,
    /// The names of the listeners it attached to.
    pub listeners: Vec<String>,
    /// Their ports.
    pub ports: BTreeSet<i32>,
}

/// What a route is, for attachment.
pub struct Route<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub hostnames: &'a [String],
}

/// Every parent of `route` that is a Gateway of our class, in order.
/// References to other kinds or to Gateways of other controllers are
/// someone else's and left out (so is a Gateway that does not exist yet:
/// its dependency is recorded, and it attaches when it appears).
pub fn attach(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    route: &Route<'_>,
    parent_refs: &[ParentRef],
) -> Vec<Parent> {
    let mut parents = Vec::new();
    for parent_ref in parent_refs {
        let group = parent_ref.group.as_deref().unwrap_or(GROUP);
        let kind = parent_ref.kind.as_deref().unwrap_or("Gateway");
        if group != GROUP || kind != "Gateway" {
            continue;
        }
        let key = ObjectKey::new(
            parent_ref.namespace.as_deref().unwrap_or(route.namespace),
            &parent_ref.name,
        );
        deps.insert(Dependency::object(GatewayKind::KIND, key.clone()));
        let Some(gateway) = input.snapshot.get::<GatewayKind>(&key) else {
            continue;
        };
        if !class::serves(input, deps, &gateway.spec.gateway_class_name) {
            continue;
        }
        let states = listeners::evaluate(
            input.config,
            input.snapshot,
            deps,
            gateway,
            listeners::Certificates::Ignore,
        );
        parents.push(attach_one(
            input, deps, route, parent_ref, key, gateway, &states,
        ));
    }
    parents
}

fn attach_one(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    route: &Route<'_>,
    parent_ref: &ParentRef,
    key: ObjectKey,
    gateway: &Gateway,
    states: &[ListenerState],
) -> Parent {
    let mut parent = Parent {
        parent_ref: parent_ref.clone(),
        gateway: key,
        accepted: Verdict::yes("Accepted"),
        served: Served::Only(Vec::new()),
        schemes: BTreeSet::new(),
        listeners: Vec::new(),
        ports: BTreeSet::new(),
    };
    let named: Vec<&ListenerState> = states
        .iter()
        .filter(|l| {
            parent_ref
                .section_name
                .as_deref()
                .is_none_or(|s| s == l.name)
        })
        .filter(|l| parent_ref.port.is_none_or(|p| p == l.port))
        .collect();
    if named.is_empty() {
        parent.accepted = Verdict::no(
            "NoMatchingParent",
            format!(
                "Gateway {} has no listener{}",
                parent.gateway,
                narrowing(parent_ref)
            ),
        );
        return parent;
    }
    // Kinds and namespaces first: a listener this route may never attach
    // to says NotAllowedByListeners even when it is not accepted itself.
    let gateway_namespace = gateway.metadata.namespace.as_deref().unwrap_or("default");
    let allowed: Vec<&ListenerState> = named
        .into_iter()
        .filter(|l| {
            l.admits(
                input.snapshot,
                deps,
                route.kind,
                route.namespace,
                gateway_namespace,
            )
        })
        .collect();
    if allowed.is_empty() {
        parent.accepted = Verdict::no(
            "NotAllowedByListeners",
            format!(
                "no listener of Gateway {}{} admits {} from namespace {}",
                parent.gateway,
                narrowing(parent_ref),
                route.kind,
                route.namespace
            ),
        );
        return parent;
    }
    let usable: Vec<&ListenerState> = allowed
        .into_iter()
        .filter(|l| l.accepted.ok && l.conflicted.is_none())
        .collect();
    if usable.is_empty() {
        parent.accepted = Verdict::no(
            "NoMatchingParent",
            format!(
                "no listener of Gateway {}{} is accepted",
                parent.gateway,
                narrowing(parent_ref)
            ),
        );
        return parent;
    }
    for listener in usable {
        let served = hostnames::intersect(listener.hostname.as_deref(), route.hostnames);
        if served.is_empty() {
            continue;
        }
        parent.served =
            std::mem::replace(&mut parent.served, Served::Only(Vec::new())).union(served);
        parent.schemes.insert(if listener.protocol == "HTTPS" {
            "https"
        } else {
            "http"
        });
        parent.listeners.push(listener.name.clone());
        parent.ports.insert(listener.port);
    }
    if parent.listeners.is_empty() {
        parent.accepted = Verdict::no(
            "NoMatchingListenerHostname",
            format!(
                "no listener of Gateway {} has a hostname that intersects the route's",
                parent.gateway
            ),
        );
    }
    parent
}

fn narrowing(parent_ref: &ParentRef) -> String {
    match (&parent_ref.section_name, parent_ref.port) {
        (Some(section), Some(port)) => format!(" named {section} on port {port}"),
        (Some(section), None) => format!(" named {section}"),
        (None, Some(port)) => format!(" on port {port}"),
        (None, None) => String::new(),
    }
}
