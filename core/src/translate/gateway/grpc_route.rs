//! `gateway.networking.k8s.io/v1` GRPCRoute, translated as the HTTPRoute
//! its matches amount to: a gRPC call is a POST to `/<service>/<method>`.
//!
//! - `service` and `method` (Exact) → the Exact path `/service/method`;
//!   `service` alone → the PathPrefix `/service`; `method` alone → the
//!   regular expression `/[^/]+/method`; `RegularExpression` → the path
//!   `/<service>/<method>` of both expressions (`[^/]+` for a missing one).
//!   So APISIX's router puts an exact method before a whole service before a
//!   method of any service, the spec's order (service characters, then
//!   method characters); headers and ties follow HTTPRoute's precedence.
//! - Upstreams use the `grpc` scheme (HTTP/2 without TLS), `grpcs` when the
//!   Service port's `appProtocol` says TLS; mirrors are `grpc://`.
//! - Everything else (attachment, filters, backends, ReferenceGrants,
//!   status) is HTTPRoute's, under the kind GRPCRoute.

use super::http_route::{self, Flavor};
use crate::api::gateway::{
    GRPCRoute, GrpcMethodMatch, GrpcRouteRule, HTTPRoute, HTTPRouteSpec, HttpPathMatch,
    HttpRouteMatch, RouteRule,
};
use crate::model::{Objects, SourceKind, StatusStyle, UnitKind, WatchWhen};
use crate::translate::{TranslateInput, Translation};

pub const KIND: &str = "GRPCRoute";

const FLAVOR: Flavor = Flavor {
    kind: KIND,
    grpc: true,
};

pub struct GrpcRouteKind;

impl SourceKind for GrpcRouteKind {
    type Object = GRPCRoute;
    type Store = Objects<GRPCRoute>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for GrpcRouteKind {
    const STATUS: StatusStyle = StatusStyle::GatewayApi;

    fn translate(input: TranslateInput<'_>, route: &GRPCRoute) -> Translation {
        http_route::translate_as(input, &as_http_route(route), FLAVOR)
    }

    fn current_status_value(object: &GRPCRoute) -> Option<serde_json::Value> {
        super::status_value(object.status.as_ref())
    }
}

/// The HTTPRoute `route` amounts to (same metadata, parents and hostnames).
pub fn as_http_route(route: &GRPCRoute) -> HTTPRoute {
    HTTPRoute {
        metadata: route.metadata.clone(),
        spec: HTTPRouteSpec {
            parent_refs: route.spec.parent_refs.clone(),
            hostnames: route.spec.hostnames.clone(),
            rules: route.spec.rules.iter().map(as_http_rule).collect(),
        },
        status: None,
    }
}

fn as_http_rule(rule: &GrpcRouteRule) -> RouteRule {
    let matches = rule
        .matches
        .iter()
        .map(|m| HttpRouteMatch {
            path: m.method.as_ref().map(path_of),
            headers: m.headers.clone(),
            query_params: Vec::new(),
            method: None,
        })
        .collect();
    RouteRule {
        name: rule.name.clone(),
        matches: Some(matches),
        filters: rule.filters.clone(),
        backend_refs: rule.backend_refs.clone(),
        timeouts: None,
        session_persistence: rule.session_persistence.clone(),
    }
}

fn path_of(method: &GrpcMethodMatch) -> HttpPathMatch {
    let path = |kind: &str, value: String| HttpPathMatch {
        match_type: Some(kind.to_string()),
        value: Some(value),
    };
    let (service, name) = (method.service.as_deref(), method.method.as_deref());
    if method.match_type.as_deref() == Some("RegularExpression") {
        let part = |p: Option<&str>| p.map_or("[^/]+".to_string(), |p| format!("(?:{p})"));
        return path(
            "RegularExpression",
            format!("/{}/{}", part(service), part(name)),
        );
    }
    match (service, name) {
        (Some(service), Some(name)) => path("Exact", format!("/{service}/{name}")),
        (Some(service), None) => path("PathPrefix", format!("/{service}")),
        (None, Some(name)) => path(
            "RegularExpression",
            format!("/[^/]+/{}", regex::escape(name)),
        ),
        (None, None) => path("PathPrefix", "/".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn method(value: serde_json::Value) -> GrpcMethodMatch {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn method_matches_become_paths() {
        let p = |v| {
            let path = path_of(&method(v));
            (path.match_type.unwrap(), path.value.unwrap())
        };
        assert_eq!(
            p(json!({"service": "shop.Cart", "method": "Add"})),
            ("Exact".into(), "/shop.Cart/Add".into())
        );
        assert_eq!(
            p(json!({"service": "shop.Cart"})),
            ("PathPrefix".into(), "/shop.Cart".into())
        );
        assert_eq!(
            p(json!({"method": "Add"})),
            ("RegularExpression".into(), "/[^/]+/Add".into())
        );
        assert_eq!(
            p(json!({"type": "RegularExpression", "service": "shop\\..*"})),
            ("RegularExpression".into(), "/(?:shop\\..*)/[^/]+".into())
        );
    }
}
