//! The Gateway API (`gateway.networking.k8s.io`, v1.5.1): GatewayClass,
//! Gateway, HTTPRoute and GRPCRoute are units, ReferenceGrant an input.
//!
//! Every Gateway of a class of ours is served by the one APISIX data plane
//! this controller writes to: listeners of different Gateways on the same
//! port share its listening socket, and a route's hostnames, not its
//! Gateway, tell them apart.
//!
//! - GatewayClass: no APISIX objects; `Accepted`.
//! - Gateway: one ssl per certificate of each programmed HTTPS listener
//!   (its SNIs: the listener's hostname, or the certificate's DNS names); `Accepted`, `Programmed` and per listener
//!   `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`,
//!   `supportedKinds` and `attachedRoutes`.
//! - HTTPRoute: see `http_route`; GRPCRoute: see `grpc_route`.

mod attachment;
mod class;
pub mod filters;
pub mod grpc_route;
pub mod hostnames;
pub mod http_route;
pub mod listeners;
pub mod precedence;
pub mod reference_grant;
mod selector;
mod spec_store;
pub mod status;

use serde_json::Value;

pub use self::grpc_route::GrpcRouteKind;
pub use self::http_route::HttpRouteKind;
pub use self::listeners::ServedPorts;
use self::listeners::{Certificates, ListenerState};
pub use self::reference_grant::ReferenceGrantKind;
pub use crate::api::gateway::GROUP;
use crate::api::gateway::{Gateway, GatewayClass};
use crate::apisix::{ApisixDir, IdKind, object_id};
use crate::model::{SourceKind, StatusStyle, UnitDeps, UnitKind, WatchWhen};
use crate::translate::{TranslateError, TranslateInput, Translation, UnitObjects, labels, tls};

/// One condition's outcome: whether it holds, the spec's reason, and a
/// message for users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn yes(reason: &'static str) -> Verdict {
        Verdict {
            ok: true,
            reason,
            message: String::new(),
        }
    }

    pub fn no(reason: &'static str, message: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// A status as last read, as JSON (what `UnitKind::current_status_value`
/// gives for every Gateway API kind).
fn status_value<S: serde::Serialize>(status: Option<&S>) -> Option<Value> {
    status.and_then(|s| serde_json::to_value(s).ok())
}

pub struct GatewayClassKind;

impl SourceKind for GatewayClassKind {
    type Object = GatewayClass;
    type Store = spec_store::SpecStore<GatewayClass>;
    const KIND: &'static str = "GatewayClass";
    const NAMESPACED: bool = false;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for GatewayClassKind {
    const STATUS: StatusStyle = StatusStyle::GatewayApi;

    fn current_status_value(object: &GatewayClass) -> Option<Value> {
        status_value(object.status.as_ref())
    }

    fn translate(input: TranslateInput<'_>, object: &GatewayClass) -> Translation {
        let deps = UnitDeps::new();
        if !class::is_ours(input.config, object) {
            return Translation::nothing(deps);
        }
        let body = status::gateway_class(&class::acceptance(object), object.metadata.generation);
        Translation {
            result: Ok(UnitObjects {
                status: Some(body),
                ..UnitObjects::default()
            }),
            deps,
        }
    }
}

pub struct GatewayKind;

impl SourceKind for GatewayKind {
    type Object = Gateway;
    type Store = spec_store::SpecStore<Gateway>;
    const KIND: &'static str = "Gateway";
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for GatewayKind {
    const STATUS: StatusStyle = StatusStyle::GatewayApi;
    const SNI_FIELD: &'static str = "spec.listeners";

    fn current_status_value(object: &Gateway) -> Option<Value> {
        status_value(object.status.as_ref())
    }

    fn translate(input: TranslateInput<'_>, gateway: &Gateway) -> Translation {
        translate_gateway(input, gateway)
    }
}

fn translate_gateway(input: TranslateInput<'_>, gateway: &Gateway) -> Translation {
    let mut deps = UnitDeps::new();
    let class_name = &gateway.spec.gateway_class_name;
    let class_key = crate::model::ObjectKey::cluster(class_name);
    deps.insert(crate::model::Dependency::object(
        GatewayClassKind::KIND,
        class_key.clone(),
    ));
    let Some(class) = input.snapshot.get::<GatewayClassKind>(&class_key) else {
        return Translation::nothing(deps);
    };
    if !class::is_ours(input.config, class) {
        return Translation::nothing(deps);
    }
    let class_accepted = class::acceptance(class).ok;
    let states = listeners::evaluate(
        input.config,
        input.snapshot,
        &mut deps,
        gateway,
        Certificates::Resolve,
    );
    let mut out = UnitObjects::default();
    let result = match class_accepted {
        true => ssls(input, gateway, &states, &mut out),
        false => Ok(()),
    };
    let result = result.map(|()| {
        out.status = Some(status::gateway(
            class_accepted,
            &states,
            gateway.metadata.generation,
        ));
        out
    });
    Translation { result, deps }
}

/// One ssl per certificate of each programmed HTTPS listener.
fn ssls(
    input: TranslateInput<'_>,
    gateway: &Gateway,
    states: &[ListenerState],
    out: &mut UnitObjects,
) -> Result<(), TranslateError> {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or("default");
    let name = gateway.metadata.name.as_deref().unwrap_or_default();
    for (index, state) in states.iter().enumerate() {
        if !state.programmed() {
            continue;
        }
        for (secret, snis) in &state.certificates {
            let (cert, mut key) = tls::key_pair(input.snapshot, secret)
                .map_err(|e| e.at(format!("spec.listeners[{index}]")))?;
            if let Some(keyring) = &input.config.keyring {
                key = keyring.encrypt(&key);
            }
            let identity = format!("Gateway/{namespace}/{name}/{}/{secret}", state.name);
            let id = object_id(&input.config.ownership, IdKind::Ssl, &identity);
            let labels = labels(
                input.config,
                GatewayKind::KIND,
                namespace,
                name,
                None,
                &mut out.warnings,
            );
            let mut value: Value = tls::ssl_value(cert, key, snis, labels);
            value["id"] = id.clone().into();
            out.add(input.config, ApisixDir::Ssls, &id, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod matcher;
