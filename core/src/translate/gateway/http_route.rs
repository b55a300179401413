//! `gateway.networking.k8s.io/v1` HTTPRoute → APISIX routes and upstreams.
//!
//! - Attachment (see `attachment`): the route is served when at least one
//!   parent Gateway of our class accepts it; its routes carry the union of
//!   the hostnames the accepting listeners serve it (none when one of them
//!   serves every hostname), and `scheme` is required when it attached only
//!   to HTTP or only to HTTPS listeners.
//! - One APISIX route per (rule, match); a rule without matches matches
//!   every request (`PathPrefix /`). Paths: Exact → the path; PathPrefix →
//!   segment-aware (`/foo` matches `/foo` and `/foo/…`, not `/foobar`; a
//!   trailing `/` is ignored); RegularExpression → `/*` with a `uri ~~`
//!   var anchored at both ends. Headers and query parameters become
//!   `http_*` and `arg_*` vars (`==` or `~~`), the method `methods`.
//! - Priorities follow the spec's precedence (see `precedence`).
//! - Backends: Services (core group) on a port, through the shared
//!   upstream of that Service port; several with weights become
//!   `traffic-split`; a backend of another namespace needs a
//!   ReferenceGrant. A rule whose backends all fail to resolve answers 500;
//!   a rule without backends and without a redirect answers 404, as the
//!   spec says. Unresolved backends are reported in `ResolvedRefs`.
//! - Timeouts: `backendRequest` (else `request`) becomes the route's send
//!   and read timeout.
//! - A rule using a feature this controller does not implement (a filter
//!   type, `sessionPersistence`, per-backend filters) answers 500 and the
//!   route reports `PartiallyInvalid` (or `Accepted=False` when no rule is
//!   left), with `UnsupportedValue`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::attachment::{self, Parent, Route};
use super::filters::{self, FilterError, FilterPlugins, MatchContext};
use super::hostnames::Served;
use super::precedence::{self, PathBand};
use super::reference_grant::{self, To};
use super::{GROUP, Verdict, status};
use crate::api::gateway::{
    BackendObjectRef, HTTPRoute, HttpBackendRef, HttpPathMatch, HttpRouteMatch, RouteRule,
};
use crate::apisix::{ApisixDir, IdKind, PluginUse, object_id};
use crate::inputs::ServiceKind;
use crate::model::{
    Dependency, ListenerRef, ObjectKey, Objects, SourceKind, StatusStyle, UnitDeps, UnitKind,
    WatchWhen,
};
use crate::translate::annotations::UpstreamSettings;
use crate::translate::backend::{self, PortRef};
use crate::translate::shared_upstream::{self, UpstreamSource};
use crate::translate::{
    TranslateError, TranslateInput, Translation, UnitObjects, display_name, labels,
};

pub const KIND: &str = "HTTPRoute";

pub struct HttpRouteKind;

impl SourceKind for HttpRouteKind {
    type Object = HTTPRoute;
    type Store = Objects<HTTPRoute>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for HttpRouteKind {
    const STATUS: StatusStyle = StatusStyle::GatewayApi;

    fn current_status_value(object: &HTTPRoute) -> Option<Value> {
        super::status_value(object.status.as_ref())
    }

    fn translate(input: TranslateInput<'_>, route: &HTTPRoute) -> Translation {
        translate(input, route)
    }
}

/// What the route's rules found, for its status.
#[derive(Debug, Default)]
struct RuleReport {
    /// The first unresolved reference: `ResolvedRefs=False` with its reason.
    unresolved: Option<Verdict>,
    /// Rules using unsupported features, by index, each with why (the
    /// first found).
    unsupported: BTreeMap<usize, String>,
    rules: usize,
}

/// What differs between the route kinds translated here: HTTPRoutes, and
/// GRPCRoutes (translated as the HTTPRoutes their matches amount to, see
/// `grpc_route`).
#[derive(Debug, Clone, Copy)]
pub struct Flavor {
    /// The route kind: in ids, labels, attachment and ReferenceGrants.
    pub kind: &'static str,
    /// Whether backends speak gRPC (HTTP/2).
    pub grpc: bool,
}

impl Flavor {
    pub const HTTP: Flavor = Flavor {
        kind: KIND,
        grpc: false,
    };

    /// The upstream scheme for a Service port whose `appProtocol` gives
    /// `app_scheme` (gRPC backends speak HTTP/2, with TLS or without,
    /// whatever the port calls it: `kubernetes.io/h2c`, `grpc`, ...).
    fn scheme(self, app_scheme: Option<&'static str>) -> &'static str {
        match (self.grpc, app_scheme) {
            (false, scheme) => scheme.unwrap_or("http"),
            (true, Some("https" | "grpcs")) => "grpcs",
            (true, _) => "grpc",
        }
    }
}

pub fn translate(input: TranslateInput<'_>, route: &HTTPRoute) -> Translation {
    translate_as(input, route, Flavor::HTTP)
}

/// Translates `route` as a route of `flavor`'s kind.
pub fn translate_as(input: TranslateInput<'_>, route: &HTTPRoute, flavor: Flavor) -> Translation {
    let mut deps = UnitDeps::new();
    let namespace = route.metadata.namespace.as_deref().unwrap_or("default");
    let attach_as = Route {
        kind: flavor.kind,
        namespace,
        hostnames: &route.spec.hostnames,
    };
    let parents = attachment::attach(input, &mut deps, &attach_as, &route.spec.parent_refs);
    let mut report = RuleReport::default();
    // Backends resolve even when no parent accepts the route, so its
    // status tells the whole truth; objects are kept only when one does.
    let served = parents.iter().any(|p| p.accepted.ok);
    let mut translator = Translator::new(input, route, flavor, &parents, &mut deps);
    let result = translator.run(&mut report).map(|()| match served {
        true => {
            let mut out = translator.out;
            out.attached_to = attached_to(&parents);
            out
        }
        false => UnitObjects::default(),
    });
    let result = result.map(|mut objects| {
        objects.status = Some(status::route(
            input.config,
            route.metadata.generation,
            &parents,
            report.unresolved.as_ref(),
            &report
                .unsupported
                .iter()
                .map(|(rule, why)| format!("rule {rule}: {why}"))
                .collect::<Vec<_>>(),
            report.rules,
        ));
        objects
    });
    Translation { result, deps }
}

struct Translator<'a, 'd> {
    input: TranslateInput<'a>,
    route: &'a HTTPRoute,
    flavor: Flavor,
    namespace: &'a str,
    name: &'a str,
    served: Served,
    /// Whether any parent accepts the route: without one, its backends are
    /// still resolved (for its status) but no route object is made.
    serving: bool,
    /// `Some` when the route is served over one scheme only.
    scheme: Option<&'static str>,
    listener_ports: BTreeSet<i32>,
    deps: &'d mut UnitDeps,
    out: UnitObjects,
    upstreams: BTreeMap<(ObjectKey, i32), String>,
}

/// How a rule's requests are answered.
enum Action {
    /// Forwarded to these upstreams (id, weight), the first the default.
    Forward(Vec<(String, i32)>),
    /// Answered by a plugin (a redirect).
    Respond,
    /// Answered with this status (nothing to forward to).
    Fail(u16),
}

impl<'a, 'd> Translator<'a, 'd> {
    fn new(
        input: TranslateInput<'a>,
        route: &'a HTTPRoute,
        flavor: Flavor,
        parents: &[Parent],
        deps: &'d mut UnitDeps,
    ) -> Translator<'a, 'd> {
        let accepted: Vec<&Parent> = parents.iter().filter(|p| p.accepted.ok).collect();
        let served = accepted
            .iter()
            .map(|p| p.served.clone())
            .reduce(Served::union)
            .unwrap_or(Served::Only(Vec::new()));
        let schemes: BTreeSet<&'static str> = accepted
            .iter()
            .flat_map(|p| p.schemes.iter().copied())
            .collect();
        let scheme = match schemes.len() {
            1 => schemes.into_iter().next(),
            _ => None,
        };
        Translator {
            input,
            route,
            flavor,
            namespace: route.metadata.namespace.as_deref().unwrap_or("default"),
            name: route.metadata.name.as_deref().unwrap_or_default(),
            served,
            serving: !accepted.is_empty(),
            scheme,
            listener_ports: accepted
                .iter()
                .flat_map(|p| p.ports.iter().copied())
                .collect(),
            deps,
            out: UnitObjects::default(),
            upstreams: BTreeMap::new(),
        }
    }

    fn run(&mut self, report: &mut RuleReport) -> Result<(), TranslateError> {
        report.rules = self.route.spec.rules.len();
        for (index, rule) in self.route.spec.rules.iter().enumerate() {
            self.rule(index, rule, report)
                .map_err(|e| e.at(format!("spec.rules[{index}]")))?;
        }
        Ok(())
    }

    fn rule(
        &mut self,
        index: usize,
        rule: &RouteRule,
        report: &mut RuleReport,
    ) -> Result<(), TranslateError> {
        let default_match = [HttpRouteMatch::default()];
        let matches = rule
            .matches
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or(&default_match);
        let unsupported = unsupported_fields(rule);
        let action = match unsupported {
            Some(_) => Action::Fail(500),
            None => self.backends(rule, report),
        };
        for (match_index, matching) in matches.iter().enumerate() {
            let path = PathPlan::of(matching.path.as_ref());
            let filtered = match (&unsupported, &action) {
                (Some(_), _) => FilterPlugins::default(),
                (None, _) => match self.filters(rule, &path) {
                    Ok(mut plugins) => {
                        if let Some((reason, message)) = plugins.unresolved.take() {
                            report
                                .unresolved
                                .get_or_insert(Verdict::no(reason, message));
                        }
                        plugins
                    }
                    Err(FilterError::Unsupported(why)) => {
                        report.unsupported.entry(index).or_insert(why);
                        self.route_object(
                            index,
                            match_index,
                            matching,
                            &path,
                            &Action::Fail(500),
                            FilterPlugins::default(),
                            rule,
                        )?;
                        continue;
                    }
                    Err(FilterError::Unresolved { reason, message }) => {
                        // Not returned by `filters::plugins`, which keeps
                        // the other filters and reports it in the result.
                        report
                            .unresolved
                            .get_or_insert(Verdict::no(reason, message));
                        FilterPlugins::default()
                    }
                },
            };
            let action = match (&action, filtered.responds) {
                (_, true) => &Action::Respond,
                (action, false) => action,
            };
            self.route_object(index, match_index, matching, &path, action, filtered, rule)?;
        }
        if let Some(why) = unsupported {
            report.unsupported.entry(index).or_insert(why);
        }
        Ok(())
    }

    fn filters(&mut self, rule: &RouteRule, path: &PathPlan) -> Result<FilterPlugins, FilterError> {
        let context = MatchContext {
            prefix: path.prefix.as_deref(),
            listener_ports: &self.listener_ports.clone(),
            scheme: self.scheme,
        };
        let (input, from) = (self.input, (self.flavor, self.namespace));
        let deps = &mut *self.deps;
        let mut mirror = |backend: &BackendObjectRef| mirror_host(input, deps, from, backend);
        filters::plugins(&rule.filters, &context, &mut mirror)
    }

    /// Resolves the rule's backends; records the first unresolved one.
    fn backends(&mut self, rule: &RouteRule, report: &mut RuleReport) -> Action {
        if rule.backend_refs.is_empty() {
            return Action::Fail(404);
        }
        let mut forward = Vec::new();
        for backend in &rule.backend_refs {
            let weight = backend.weight.unwrap_or(1);
            match self.upstream_for(backend) {
                Ok(id) if weight > 0 => forward.push((id, weight)),
                Ok(_) => {}
                Err(verdict) => {
                    report.unresolved.get_or_insert(verdict);
                }
            }
        }
        if forward.is_empty() {
            Action::Fail(500)
        } else {
            Action::Forward(forward)
        }
    }

    fn upstream_for(&mut self, backend: &HttpBackendRef) -> Result<String, Verdict> {
        let reference = &backend.backend;
        let from = (self.flavor.kind, self.namespace);
        let key = resolve_service_ref(self.input, self.deps, from, reference)?;
        let port = reference.port.ok_or_else(|| {
            Verdict::no(
                "UnsupportedValue",
                format!("backendRef Service {key} names no port"),
            )
        })?;
        if let Some(id) = self.upstreams.get(&(key.clone(), port)) {
            return Ok(id.clone());
        }
        let resolved = backend::resolve(self.input.snapshot, &key, &PortRef::Number(port))
            .map_err(|e| Verdict::no("BackendNotFound", e.to_string()))?;
        let source = UpstreamSource {
            namespace: &key.namespace,
            name: &key.name,
            kind: ServiceKind::KIND,
            port: resolved.service_port,
            granularity: "endpoint",
            subset: None,
        };
        let nodes: Vec<Value> = resolved.nodes.iter().map(|n| n.to_json(100)).collect();
        let mut upstream = Map::new();
        upstream.insert(
            "name".into(),
            display_name(format!("{}_{}_{}", key.namespace, key.name, port)).into(),
        );
        upstream.insert("type".into(), "roundrobin".into());
        let scheme = self.flavor.scheme(resolved.scheme);
        upstream.insert("scheme".into(), scheme.into());
        upstream.insert("nodes".into(), nodes.into());
        // The settings of an Ingress without upstream annotations, so both
        // kinds on one Service port share one upstream key.
        let (connect, send, read) = UpstreamSettings::default().timeout;
        upstream.insert(
            "timeout".into(),
            json!({"connect": connect, "send": send, "read": read}),
        );
        upstream.insert(
            "labels".into(),
            shared_upstream::labels(self.input.config, &source, None, &mut self.out.warnings),
        );
        let id = shared_upstream::assign_id(self.input.config, &source, &mut upstream);
        self.out
            .add(
                self.input.config,
                ApisixDir::Upstreams,
                &id,
                Value::Object(upstream),
            )
            .map_err(|e| Verdict::no("UnsupportedValue", e.to_string()))?;
        self.upstreams.insert((key, port), id.clone());
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn route_object(
        &mut self,
        rule_index: usize,
        match_index: usize,
        matching: &HttpRouteMatch,
        path: &PathPlan,
        action: &Action,
        filtered: FilterPlugins,
        rule: &RouteRule,
    ) -> Result<(), TranslateError> {
        if !self.serving {
            return Ok(());
        }
        let identity = format!(
            "{}/{}/{}/{rule_index}/{match_index}",
            self.flavor.kind, self.namespace, self.name
        );
        let id = object_id(&self.input.config.ownership, IdKind::Route, &identity);
        let created = self
            .route
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        let mut object = Map::new();
        object.insert("id".into(), id.clone().into());
        let rule_name = rule.name.clone().unwrap_or_else(|| rule_index.to_string());
        object.insert(
            "name".into(),
            display_name(format!(
                "{}_{}_{rule_name}_{match_index}",
                self.namespace, self.name
            ))
            .into(),
        );
        object.insert("uris".into(), json!(path.uris));
        if let Served::Only(hosts) = &self.served {
            object.insert("hosts".into(), json!(hosts));
        }
        if let Some(method) = &matching.method {
            object.insert("methods".into(), json!([method]));
        }
        let vars = self.vars(matching, path);
        if !vars.is_empty() {
            object.insert("vars".into(), Value::Array(vars));
        }
        object.insert(
            "priority".into(),
            precedence::priority(path.band, matching, created, rule_index).into(),
        );
        let mut plugins = filtered.plugins;
        match action {
            Action::Forward(upstreams) => {
                object.insert("upstream_id".into(), upstreams[0].0.clone().into());
                if upstreams.len() > 1 {
                    plugins.insert("traffic-split".into(), traffic_split(upstreams));
                }
            }
            Action::Respond => {}
            Action::Fail(status) => {
                plugins.clear();
                plugins.insert(
                    "fault-injection".into(),
                    json!({"abort": {"http_status": status}}),
                );
            }
        }
        if let Some(schemas) = &self.input.config.schemas {
            for (name, conf) in &plugins {
                schemas.check(name, conf, PluginUse::Http)?;
            }
        }
        if !plugins.is_empty() {
            object.insert("plugins".into(), json!(plugins));
        }
        if let Some(timeout) = rule_timeout(rule)? {
            object.insert(
                "timeout".into(),
                json!({"connect": timeout.min(60.0), "send": timeout, "read": timeout}),
            );
        }
        let labels = labels(
            self.input.config,
            self.flavor.kind,
            self.namespace,
            self.name,
            None,
            &mut self.out.warnings,
        );
        object.insert("labels".into(), labels);
        let config = self.input.config;
        self.out
            .add(config, ApisixDir::Routes, &id, Value::Object(object))
    }

    fn vars(&self, matching: &HttpRouteMatch, path: &PathPlan) -> Vec<Value> {
        let mut vars = Vec::new();
        if let Some(regex) = &path.regex {
            vars.push(json!(["uri", "~~", format!("^(?:{regex})$")]));
        }
        for header in &matching.headers {
            let var = format!(
                "http_{}",
                header.name.to_ascii_lowercase().replace('-', "_")
            );
            vars.push(value_match(
                var,
                header.match_type.as_deref(),
                &header.value,
            ));
        }
        for query in &matching.query_params {
            vars.push(value_match(
                format!("arg_{}", query.name),
                query.match_type.as_deref(),
                &query.value,
            ));
        }
        if let Some(scheme) = self.scheme {
            vars.push(json!(["scheme", "==", scheme]));
        }
        vars
    }
}

/// The listeners the route counts in: those of every accepting parent.
fn attached_to(parents: &[Parent]) -> Vec<ListenerRef> {
    let mut listeners: Vec<ListenerRef> = parents
        .iter()
        .filter(|p| p.accepted.ok)
        .flat_map(|p| {
            p.listeners.iter().map(|listener| ListenerRef {
                gateway: p.gateway.clone(),
                listener: listener.clone(),
            })
        })
        .collect();
    listeners.sort();
    listeners.dedup();
    listeners
}

fn value_match(var: String, match_type: Option<&str>, value: &str) -> Value {
    match match_type {
        Some("RegularExpression") => json!([var, "~~", value]),
        _ => json!([var, "==", value]),
    }
}

fn traffic_split(upstreams: &[(String, i32)]) -> Value {
    let mut weighted: Vec<Value> = upstreams[1..]
        .iter()
        .map(|(id, weight)| json!({"upstream_id": id, "weight": weight}))
        .collect();
    // The entry without an upstream is the route's own (the first backend).
    weighted.push(json!({"weight": upstreams[0].1}));
    json!({"rules": [{"weighted_upstreams": weighted}]})
}

/// The features of a rule this controller does not implement.
fn unsupported_fields(rule: &RouteRule) -> Option<String> {
    if rule.session_persistence.is_some() {
        return Some("sessionPersistence is not supported".into());
    }
    if rule.backend_refs.iter().any(|b| !b.filters.is_empty()) {
        return Some("per-backend filters are not supported".into());
    }
    None
}

/// A Gateway API duration (`1h2m3s`, `500ms`) in seconds; `0s` disables.
fn rule_timeout(rule: &RouteRule) -> Result<Option<f64>, TranslateError> {
    let Some(timeouts) = &rule.timeouts else {
        return Ok(None);
    };
    let Some(text) = timeouts
        .backend_request
        .as_ref()
        .or(timeouts.request.as_ref())
    else {
        return Ok(None);
    };
    let seconds = parse_duration(text).ok_or_else(|| {
        TranslateError::Invalid(format!("timeouts: {text:?} is not a Gateway API duration"))
    })?;
    Ok((seconds > 0.0).then_some(seconds))
}

pub(crate) fn parse_duration(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, scale) = ["ms", "h", "m", "s"]
            .iter()
            .zip([0.001, 3600.0, 60.0, 1.0])
            .find(|(unit, _)| rest.starts_with(**unit))?;
        total += number * scale;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// A backend or mirror reference to a Service: the core group and kind,
/// permitted across namespaces by a ReferenceGrant.
fn resolve_service_ref(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    (from_kind, namespace): (&'static str, &str),
    reference: &BackendObjectRef,
) -> Result<ObjectKey, Verdict> {
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err(Verdict::no(
            "InvalidKind",
            format!(
                "backendRef {group}/{kind} {}: only Services are supported",
                reference.name
            ),
        ));
    }
    let key = ObjectKey::new(
        reference.namespace.as_deref().unwrap_or(namespace),
        &reference.name,
    );
    let from = reference_grant::From {
        group: GROUP,
        kind: from_kind,
        namespace,
    };
    if !reference_grant::permits(
        input.snapshot,
        deps,
        from,
        To {
            group: "",
            kind: "Service",
            key: &key,
        },
    ) {
        return Err(Verdict::no(
            "RefNotPermitted",
            format!(
                "backendRef Service {key}: no ReferenceGrant in {} allows it",
                key.namespace
            ),
        ));
    }
    deps.insert(Dependency::object(ServiceKind::KIND, key.clone()));
    Ok(key)
}

/// A mirror's target: the Service's cluster IP and port (APISIX mirrors to
/// one host).
fn mirror_host(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    (flavor, namespace): (Flavor, &str),
    backend: &BackendObjectRef,
) -> Result<String, FilterError> {
    let unresolved = |v: Verdict| FilterError::Unresolved {
        reason: v.reason,
        message: v.message,
    };
    let key =
        resolve_service_ref(input, deps, (flavor.kind, namespace), backend).map_err(unresolved)?;
    let service =
        input
            .snapshot
            .get::<ServiceKind>(&key)
            .ok_or_else(|| FilterError::Unresolved {
                reason: "BackendNotFound",
                message: format!("mirror Service {key} not found"),
            })?;
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .ok_or_else(|| {
            FilterError::Unsupported(format!("mirror Service {key} has no cluster IP"))
        })?;
    let port = backend
        .port
        .ok_or_else(|| FilterError::Unsupported(format!("mirror Service {key} names no port")))?;
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    Ok(format!("{}://{host}:{port}", flavor.scheme(None)))
}

/// How one match's path becomes APISIX uris, vars and a precedence band.
struct PathPlan {
    uris: Vec<String>,
    regex: Option<String>,
    band: PathBand,
    /// For PathPrefix: the prefix without its trailing slash.
    prefix: Option<String>,
}

impl PathPlan {
    fn of(path: Option<&HttpPathMatch>) -> PathPlan {
        let value = path.and_then(|p| p.value.as_deref()).unwrap_or("/");
        match path
            .and_then(|p| p.match_type.as_deref())
            .unwrap_or("PathPrefix")
        {
            // APISIX reads a trailing `*` in a uri as "any suffix": a path
            // holding one is matched as an escaped regular expression.
            "Exact" if value.contains('*') => PathPlan {
                uris: vec!["/*".into()],
                regex: Some(regex::escape(value)),
                band: PathBand::Exact,
                prefix: None,
            },
            "Exact" => PathPlan {
                uris: vec![value.to_string()],
                regex: None,
                band: PathBand::Exact,
                prefix: None,
            },
            "RegularExpression" => PathPlan {
                uris: vec!["/*".into()],
                regex: Some(value.to_string()),
                band: PathBand::RegularExpression,
                prefix: None,
            },
            _ if value.contains('*') => {
                let prefix = value.trim_end_matches('/');
                PathPlan {
                    uris: vec!["/*".into()],
                    regex: Some(format!("{}(/.*)?", regex::escape(prefix))),
                    band: PathBand::PathPrefix,
                    prefix: Some(prefix.to_string()),
                }
            }
            _ => {
                let prefix = value.trim_end_matches('/');
                let uris = if prefix.is_empty() {
                    vec!["/*".to_string()]
                } else {
                    vec![prefix.to_string(), format!("{prefix}/*")]
                };
                PathPlan {
                    uris,
                    regex: None,
                    band: PathBand::PathPrefix,
                    prefix: Some(prefix.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(10.0));
        assert_eq!(parse_duration("1h2m3s"), Some(3723.0));
        assert_eq!(parse_duration("500ms"), Some(0.5));
        assert_eq!(parse_duration("1m500ms"), Some(60.5));
        assert_eq!(parse_duration("0s"), Some(0.0));
        for bad in ["", "10", "s", "1d", "1.5s", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_plans() {
        let plan = |t: &str, v: &str| {
            PathPlan::of(Some(&HttpPathMatch {
                match_type: Some(t.into()),
                value: Some(v.into()),
            }))
        };
        assert_eq!(plan("PathPrefix", "/foo/").uris, ["/foo", "/foo/*"]);
        assert_eq!(plan("PathPrefix", "/").uris, ["/*"]);
        assert_eq!(PathPlan::of(None).uris, ["/*"]);
        assert_eq!(plan("Exact", "/foo/").uris, ["/foo/"]);
        let starred = plan("Exact", "/files*");
        assert_eq!(
            (starred.uris, starred.regex.as_deref()),
            (vec!["/*".to_string()], Some("/files\\*"))
        );
        let starred = plan("PathPrefix", "/a*b/");
        assert_eq!(starred.regex.as_deref(), Some("/a\\*b(/.*)?"));
        let regex = plan("RegularExpression", "/v[0-9]+/.*");
        assert_eq!(
            (regex.uris, regex.regex.as_deref()),
            (vec!["/*".to_string()], Some("/v[0-9]+/.*"))
        );
    }
}
