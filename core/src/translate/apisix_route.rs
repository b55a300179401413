//! ApisixRoute → APISIX routes (one per `http` rule), stream routes (one per
//! `stream` rule) and their upstreams (one per backend of the rule, owned by
//! the route's unit, decorated by the ApisixUpstream of the backend's
//! Service); weighted backends and external upstreams become `traffic-split`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

use super::backend::{self, Node, PortRef};
use super::plugins::plugins_object;
use super::shared_upstream::{self, UpstreamSource};
use super::upstream_settings::{self, duration_seconds};
use super::{TranslateError, TranslateInput, Translation, UnitObjects, display_name, labels};
use crate::api::ApisixStatus;
use crate::api::route_types::{
    AuthType, Authentication, Backend, HttpRoute, MatchExpr, MatchOperator, MatchScope,
    ResolveGranularity, StreamRoute,
};
use crate::api::upstream_types::ExternalNodeType;
use crate::api::{ApisixRoute, TimeoutSettings};
use crate::apisix::{ApisixDir, IdKind, PluginUse, object_id};
use crate::inputs::{PodKind, ServiceKind};
use crate::model::{
    Dependency, ObjectKey, Objects, SourceKind, StatusStyle, UnitDeps, UnitKind, WatchWhen,
};
use crate::translate::apisix_upstream::ApisixUpstreamKind;
use crate::translate::plugin_sets::ApisixPluginConfigKind;

pub const KIND: &str = "ApisixRoute";

pub struct ApisixRouteKind;

impl SourceKind for ApisixRouteKind {
    type Object = ApisixRoute;
    type Store = Objects<ApisixRoute>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixRouteKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    fn translate(input: TranslateInput<'_>, route: &ApisixRoute) -> Translation {
        translate(input, route)
    }

    fn ingress_class_name(route: &ApisixRoute) -> Option<&str> {
        route.spec.ingress_class_name.as_deref()
    }

    fn current_status(route: &ApisixRoute) -> Option<&ApisixStatus> {
        route.status.as_ref()
    }
}
const DEFAULT_WEIGHT: i64 = 100;

pub fn translate(input: TranslateInput<'_>, route: &ApisixRoute) -> Translation {
    let mut deps = UnitDeps::new();
    let result = RouteTranslator {
        input,
        namespace: route.metadata.namespace.as_deref().unwrap_or("default"),
        name: route.metadata.name.as_deref().unwrap_or_default(),
        user_labels: route.metadata.labels.as_ref(),
        deps: &mut deps,
        out: UnitObjects::default(),
    }
    .run(route);
    Translation { result, deps }
}

struct RouteTranslator<'a> {
    input: TranslateInput<'a>,
    namespace: &'a str,
    name: &'a str,
    /// The ApisixRoute's labels, copied into its routes.
    user_labels: Option<&'a BTreeMap<String, String>>,
    deps: &'a mut UnitDeps,
    out: UnitObjects,
}

fn invalid(rule: &str, reason: impl std::fmt::Display) -> TranslateError {
    TranslateError::Invalid(format!("rule {rule}: {reason}"))
}

impl RouteTranslator<'_> {
    fn run(mut self, route: &ApisixRoute) -> Result<UnitObjects, TranslateError> {
        let mut names = BTreeSet::new();
        for (index, rule) in route.spec.http.iter().flatten().enumerate() {
            let field = format!("spec.http[{index}]");
            if !names.insert(rule.name.clone()) {
                return Err(invalid(&rule.name, "the name is used twice").at(field + ".name"));
            }
            self.http_rule(rule).map_err(|error| error.at(field))?;
        }
        for (index, rule) in route.spec.stream.iter().flatten().enumerate() {
            let field = format!("spec.stream[{index}]");
            if !names.insert(rule.name.clone()) {
                return Err(invalid(&rule.name, "the name is used twice").at(field + ".name"));
            }
            self.stream_rule(rule).map_err(|error| error.at(field))?;
        }
        Ok(self.out)
    }

    /// The labels of this ApisixRoute's routes: its own, then ours.
    fn route_labels(&mut self) -> Value {
        labels(
            self.input.config,
            KIND,
            self.namespace,
            self.name,
            self.user_labels,
            &mut self.out.warnings,
        )
    }

    fn identity(&self, rest: &str) -> String {
        format!("{KIND}/{}/{}/{rest}", self.namespace, self.name)
    }

    fn http_rule(&mut self, rule: &HttpRoute) -> Result<(), TranslateError> {
        let config = self.input.config;
        let id = object_id(&config.ownership, IdKind::Route, &self.identity(&rule.name));
        let mut value = Map::new();
        value.insert("id".into(), id.clone().into());
        value.insert(
            "name".into(),
            display_name(format!("{}_{}_{}", self.namespace, self.name, rule.name)).into(),
        );
        value.insert("labels".into(), self.route_labels());
        route_matches(rule, &mut value)?;
        if let Some(timeout) = &rule.timeout {
            value.insert("timeout".into(), route_timeout(&rule.name, timeout)?);
        }
        if rule.websocket == Some(true) {
            value.insert("enable_websocket".into(), true.into());
        }
        let mut plugins = self.rule_plugins(rule)?;
        if let Some(pc) = &rule.plugin_config_name {
            let pc_id = self.plugin_config(rule, pc)?;
            value.insert("plugin_config_id".into(), pc_id.into());
        }
        if let Some(upstream_id) = self.rule_upstreams(rule, &mut plugins)? {
            value.insert("upstream_id".into(), upstream_id.into());
        }
        if !plugins.is_empty() {
            value.insert("plugins".into(), Value::Object(plugins));
        }
        self.out
            .add(config, ApisixDir::Routes, &id, Value::Object(value))
    }

    /// The rule's plugins, with its authentication plugin.
    fn rule_plugins(&mut self, rule: &HttpRoute) -> Result<Map<String, Value>, TranslateError> {
        let config = self.input.config;
        let mut plugins = plugins_object(
            config,
            self.input.snapshot,
            self.deps,
            self.namespace,
            rule.plugins.as_deref().unwrap_or_default(),
            PluginUse::Http,
        )
        .map_err(|error| error.at("plugins"))?;
        if let Some(auth) = rule.authentication.as_ref().filter(|a| a.enable) {
            let (plugin, conf) = authentication(auth);
            if plugins.contains_key(plugin) {
                return Err(invalid(
                    &rule.name,
                    format!("authentication and plugins both set {plugin}"),
                ));
            }
            if let Some(schemas) = &config.schemas {
                schemas.check(plugin, &conf, PluginUse::Http)?;
            }
            plugins.insert(plugin.into(), conf);
        }
        Ok(plugins)
    }

    /// The id of the ApisixPluginConfig the rule names, which must exist.
    fn plugin_config(&mut self, rule: &HttpRoute, name: &str) -> Result<String, TranslateError> {
        let namespace = rule
            .plugin_config_namespace
            .as_deref()
            .unwrap_or(self.namespace);
        let key = ObjectKey::new(namespace, name);
        self.deps.insert(Dependency::object(
            ApisixPluginConfigKind::KIND,
            key.clone(),
        ));
        if self
            .input
            .snapshot
            .get::<ApisixPluginConfigKind>(&key)
            .is_none()
        {
            return Err(TranslateError::missing(
                ApisixPluginConfigKind::KIND,
                &key,
                format!("rule {}: ApisixPluginConfig {key} not found", rule.name),
            ));
        }
        Ok(super::plugin_sets::plugin_config_id(
            self.input.config,
            namespace,
            name,
        ))
    }

    /// The rule's upstreams: backends first (the first is the route's
    /// upstream), then referenced external ApisixUpstreams; more than one
    /// becomes a `traffic-split` plugin. Returns the route's upstream.
    fn rule_upstreams(
        &mut self,
        rule: &HttpRoute,
        plugins: &mut Map<String, Value>,
    ) -> Result<Option<String>, TranslateError> {
        let mut weighted: Vec<(String, i64)> = Vec::new();
        for backend in rule.backends.iter().flatten() {
            let upstream = self.backend_upstream(&rule.name, backend)?;
            weighted.push((upstream, backend.weight.unwrap_or(DEFAULT_WEIGHT)));
        }
        for reference in rule.upstreams.iter().flatten() {
            let upstream = self.external_upstream(&rule.name, &reference.name)?;
            weighted.push((upstream, reference.weight.unwrap_or(DEFAULT_WEIGHT)));
        }
        let Some(((first, first_weight), rest)) = weighted.split_first() else {
            return Ok(None);
        };
        if !rest.is_empty() {
            if plugins.contains_key("traffic-split") {
                return Err(invalid(
                    &rule.name,
                    "several backends and a traffic-split plugin exclude each other",
                ));
            }
            let mut shares: Vec<Value> = rest
                .iter()
                .map(|(id, weight)| json!({"upstream_id": id, "weight": weight}))
                .collect();
            shares.push(json!({"weight": first_weight}));
            plugins.insert(
                "traffic-split".into(),
                json!({"rules": [{"weighted_upstreams": shares}]}),
            );
        }
        Ok(Some(first.clone()))
    }

    fn stream_rule(&mut self, rule: &StreamRoute) -> Result<(), TranslateError> {
        let config = self.input.config;
        let backend = Backend {
            service_name: rule.backend.service_name.clone(),
            service_port: rule.backend.service_port.clone(),
            resolve_granularity: rule.backend.resolve_granularity,
            weight: None,
            subset: rule.backend.subset.clone(),
        };
        let upstream_id = self.backend_upstream(&rule.name, &backend)?;
        let id = object_id(
            &config.ownership,
            IdKind::StreamRoute,
            &self.identity(&format!("stream/{}", rule.name)),
        );
        let mut value = Map::new();
        value.insert("id".into(), id.clone().into());
        value.insert("labels".into(), self.route_labels());
        value.insert("server_port".into(), rule.matches.ingress_port.into());
        if let Some(sni) = &rule.matches.host {
            value.insert("sni".into(), sni.clone().into());
        }
        value.insert("upstream_id".into(), upstream_id.into());
        let plugins = plugins_object(
            config,
            self.input.snapshot,
            self.deps,
            self.namespace,
            rule.plugins.as_deref().unwrap_or_default(),
            PluginUse::Stream,
        )
        .map_err(|error| error.at("plugins"))?;
        if !plugins.is_empty() {
            value.insert("plugins".into(), Value::Object(plugins));
        }
        self.out
            .add(config, ApisixDir::StreamRoutes, &id, Value::Object(value))
    }

    /// The upstream of one backend (a Service port of the route's namespace).
    fn backend_upstream(
        &mut self,
        rule: &str,
        backend: &Backend,
    ) -> Result<String, TranslateError> {
        let config = self.input.config;
        let service = ObjectKey::new(self.namespace, &backend.service_name);
        self.deps
            .insert(Dependency::object(ServiceKind::KIND, service.clone()));
        self.deps.insert(Dependency::object(
            ApisixUpstreamKind::KIND,
            service.clone(),
        ));
        let subset = self.subset(rule, backend, &service)?;
        let port = match &backend.service_port {
            IntOrString::Int(n) => PortRef::Number(*n),
            IntOrString::String(name) => PortRef::Name(name.clone()),
        };
        let resolved = backend::resolve_selected(
            self.input.snapshot,
            &service,
            &port,
            subset.as_ref().map(|(_, labels)| labels),
        )?;
        let granularity = backend.resolve_granularity.unwrap_or_default();
        let nodes = self.granular_nodes(rule, &service, granularity, &resolved)?;
        let subset_name = subset.as_ref().map(|(name, _)| name.as_str());
        let source = UpstreamSource {
            namespace: self.namespace,
            name: &backend.service_name,
            kind: ServiceKind::KIND,
            port: resolved.service_port,
            granularity: granularity_name(granularity),
            subset: subset_name,
        };
        let name = match subset_name {
            Some(subset) => format!(
                "{}_{}_{subset}_{}",
                self.namespace, backend.service_name, resolved.service_port
            ),
            None => format!(
                "{}_{}_{}",
                self.namespace, backend.service_name, resolved.service_port
            ),
        };
        let mut upstream = Map::new();
        upstream.insert("name".into(), display_name(name).into());
        upstream.insert("type".into(), "roundrobin".into());
        upstream.insert("scheme".into(), resolved.scheme.unwrap_or("http").into());
        upstream.insert(
            "nodes".into(),
            nodes
                .iter()
                .map(|n| n.to_json(100))
                .collect::<Vec<_>>()
                .into(),
        );
        let decoration = self.input.snapshot.get::<ApisixUpstreamKind>(&service);
        let decoration_labels = decoration.and_then(|d| d.metadata.labels.as_ref());
        upstream.insert(
            "labels".into(),
            shared_upstream::labels(config, &source, decoration_labels, &mut self.out.warnings),
        );
        if let Some(decoration) = decoration {
            let settings = upstream_settings::effective(&decoration.spec, resolved.service_port);
            upstream_settings::apply(self.input.snapshot, self.deps, &settings, &mut upstream)?;
        }
        let id = shared_upstream::assign_id(config, &source, &mut upstream);
        if self.out.objects.keys().all(|k| k.id() != id) {
            self.out
                .add(config, ApisixDir::Upstreams, &id, Value::Object(upstream))?;
        }
        Ok(id)
    }

    /// The backend's subset: its name and Pod labels, from the ApisixUpstream
    /// of the Service.
    fn subset(
        &mut self,
        rule: &str,
        backend: &Backend,
        service: &ObjectKey,
    ) -> Result<Option<Subset>, TranslateError> {
        let Some(subset) = &backend.subset else {
            return Ok(None);
        };
        let labels = self
            .input
            .snapshot
            .get::<ApisixUpstreamKind>(service)
            .and_then(|u| u.spec.settings.subsets.as_ref())
            .and_then(|subsets| subsets.iter().find(|s| &s.name == subset))
            .map(|s| s.labels.clone())
            .ok_or_else(|| {
                invalid(
                    rule,
                    format!("subset {subset:?} is not defined in ApisixUpstream {service}"),
                )
            })?;
        self.deps
            .insert(Dependency::namespace(PodKind::KIND, self.namespace));
        Ok(Some((subset.clone(), labels)))
    }

    /// The endpoints, or with `resolveGranularity: service` the cluster IP.
    fn granular_nodes(
        &self,
        rule: &str,
        service: &ObjectKey,
        granularity: ResolveGranularity,
        resolved: &backend::ResolvedBackend,
    ) -> Result<Vec<Node>, TranslateError> {
        if granularity == ResolveGranularity::Endpoint {
            return Ok(resolved.nodes.clone());
        }
        let cluster_ip = self
            .input
            .snapshot
            .get::<ServiceKind>(service)
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.cluster_ip.clone())
            .filter(|ip| !ip.is_empty() && ip != "None")
            .ok_or_else(|| {
                invalid(
                    rule,
                    format!("service {service} has no cluster IP (headless?) for resolveGranularity service"),
                )
            })?;
        Ok(vec![Node {
            host: cluster_ip,
            port: resolved.service_port,
        }])
    }

    /// An ApisixUpstream with externalNodes or discovery, referenced by name.
    fn external_upstream(&mut self, rule: &str, name: &str) -> Result<String, TranslateError> {
        let config = self.input.config;
        let key = ObjectKey::new(self.namespace, name);
        self.deps
            .insert(Dependency::object(ApisixUpstreamKind::KIND, key.clone()));
        let external = self
            .input
            .snapshot
            .get::<ApisixUpstreamKind>(&key)
            .ok_or_else(|| {
                TranslateError::missing(
                    ApisixUpstreamKind::KIND,
                    &key,
                    format!("rule {rule}: ApisixUpstream {key} not found"),
                )
            })?;
        let spec = &external.spec;
        let source = UpstreamSource {
            namespace: self.namespace,
            name,
            kind: ApisixUpstreamKind::KIND,
            port: 0,
            granularity: "external",
            subset: None,
        };
        let mut upstream = Map::new();
        upstream.insert(
            "name".into(),
            display_name(format!("{}_{name}", self.namespace)).into(),
        );
        upstream.insert("type".into(), "roundrobin".into());
        upstream.insert(
            "labels".into(),
            shared_upstream::labels(
                config,
                &source,
                external.metadata.labels.as_ref(),
                &mut self.out.warnings,
            ),
        );
        let scheme = spec
            .settings
            .scheme
            .map(|s| serde_json::to_value(s).expect("an enum serializes"));
        let default_port = match scheme.as_ref().and_then(Value::as_str) {
            Some("https") | Some("grpcs") => 443,
            _ => 80,
        };
        if let Some(nodes) = &spec.external_nodes {
            let mut out = Vec::new();
            for node in nodes {
                let host = match node.type_ {
                    ExternalNodeType::Domain => node.name.clone(),
                    ExternalNodeType::Service => {
                        let service_key = ObjectKey::new(self.namespace, &node.name);
                        self.deps
                            .insert(Dependency::object(ServiceKind::KIND, service_key.clone()));
                        let service = self
                            .input
                            .snapshot
                            .get::<ServiceKind>(&service_key)
                            .and_then(|s| s.spec.as_ref())
                            .filter(|s| s.type_.as_deref() == Some("ExternalName"))
                            .ok_or_else(|| invalid(rule, format!("externalNodes: {service_key} is not an ExternalName Service")))?;
                        service.external_name.clone().unwrap_or_default()
                    }
                };
                out.push(json!({"host": host, "port": node.port.unwrap_or(default_port), "weight": node.weight.unwrap_or(DEFAULT_WEIGHT)}));
            }
            upstream.insert("nodes".into(), out.into());
        } else if let Some(discovery) = &spec.discovery {
            upstream.insert("service_name".into(), discovery.service_name.clone().into());
            upstream.insert("discovery_type".into(), discovery.type_.clone().into());
            if let Some(args) = &discovery.args {
                upstream.insert("discovery_args".into(), json!(args));
            }
        } else {
            return Err(invalid(
                rule,
                format!("ApisixUpstream {key} has neither externalNodes nor discovery"),
            ));
        }
        upstream_settings::apply(
            self.input.snapshot,
            self.deps,
            &spec.settings,
            &mut upstream,
        )?;
        let id = shared_upstream::assign_id(config, &source, &mut upstream);
        self.out
            .add(config, ApisixDir::Upstreams, &id, Value::Object(upstream))?;
        Ok(id)
    }
}

/// A backend subset: its name and the Pod labels it selects.
type Subset = (String, BTreeMap<String, String>);

fn granularity_name(granularity: ResolveGranularity) -> &'static str {
    match granularity {
        ResolveGranularity::Endpoint => "endpoint",
        ResolveGranularity::Service => "service",
    }
}

/// The rule's `match` → the route's uris, hosts, methods, remote_addrs,
/// vars, filter_func and priority.
fn route_matches(rule: &HttpRoute, value: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let m = &rule.matches;
    value.insert("uris".into(), m.paths.clone().into());
    if let Some(hosts) = m.hosts.as_ref().filter(|h| !h.is_empty()) {
        value.insert("hosts".into(), hosts.clone().into());
    }
    if let Some(methods) = m.methods.as_ref().filter(|m| !m.is_empty()) {
        value.insert(
            "methods".into(),
            serde_json::to_value(methods).expect("enums serialize"),
        );
    }
    if let Some(addrs) = m.remote_addrs.as_ref().filter(|a| !a.is_empty()) {
        value.insert("remote_addrs".into(), addrs.clone().into());
    }
    if let Some(exprs) = m.exprs.as_ref().filter(|e| !e.is_empty()) {
        let vars: Result<Vec<Value>, _> = exprs.iter().map(|e| expression(&rule.name, e)).collect();
        value.insert("vars".into(), vars?.into());
    }
    if let Some(filter) = &m.filter_func {
        value.insert("filter_func".into(), filter.clone().into());
    }
    if let Some(priority) = rule.priority {
        value.insert("priority".into(), priority.into());
    }
    Ok(())
}

/// The rule's timeouts in seconds; an unset part is APISIX's 60 s.
fn route_timeout(rule: &str, timeout: &TimeoutSettings) -> Result<Value, TranslateError> {
    let part = |v: &Option<String>| -> Result<f64, TranslateError> {
        v.as_deref().map_or(Ok(60.0), |t| {
            duration_seconds(t)
                .ok_or_else(|| invalid(rule, format!("timeout {t:?} is not a duration")))
        })
    };
    Ok(
        json!({"connect": part(&timeout.connect)?, "send": part(&timeout.send)?, "read": part(&timeout.read)?}),
    )
}

/// A match expression → an APISIX `vars` entry.
fn expression(rule: &str, expr: &MatchExpr) -> Result<Value, TranslateError> {
    let name = expr.subject.name.clone().unwrap_or_default();
    let subject = match expr.subject.scope {
        MatchScope::Header => format!("http_{}", name.to_ascii_lowercase().replace('-', "_")),
        MatchScope::Query => format!("arg_{name}"),
        MatchScope::Cookie => format!("cookie_{name}"),
        MatchScope::Path => "uri".to_string(),
        MatchScope::Variable => name,
        MatchScope::Body => format!("post_arg.{name}"),
    };
    let (negate, op) = match expr.op {
        MatchOperator::Equal => (false, "=="),
        MatchOperator::NotEqual => (false, "~="),
        MatchOperator::GreaterThan => (false, ">"),
        MatchOperator::GreaterThanEqual => (false, ">="),
        MatchOperator::LessThan => (false, "<"),
        MatchOperator::LessThanEqual => (false, "<="),
        MatchOperator::In => (false, "in"),
        MatchOperator::NotIn => (true, "in"),
        MatchOperator::RegexMatch => (false, "~~"),
        MatchOperator::RegexNotMatch => (true, "~~"),
        MatchOperator::RegexMatchCaseInsensitive => (false, "~*"),
        MatchOperator::RegexNotMatchCaseInsensitive => (true, "~*"),
    };
    let operand = match expr.op {
        MatchOperator::In | MatchOperator::NotIn => Value::from(
            expr.set
                .clone()
                .ok_or_else(|| invalid(rule, "In and NotIn need set"))?,
        ),
        _ => {
            let value = expr
                .value
                .clone()
                .ok_or_else(|| invalid(rule, "this operator needs value"))?;
            if matches!(
                expr.op,
                MatchOperator::RegexMatch
                    | MatchOperator::RegexNotMatch
                    | MatchOperator::RegexMatchCaseInsensitive
                    | MatchOperator::RegexNotMatchCaseInsensitive
            ) {
                regex::Regex::new(&value).map_err(|e| {
                    invalid(
                        rule,
                        format!("{value:?} is not a valid regular expression: {e}"),
                    )
                })?;
            }
            Value::from(value)
        }
    };
    Ok(if negate {
        json!([subject, "!", op, operand])
    } else {
        json!([subject, op, operand])
    })
}

/// `authentication` → the APISIX auth plugin and its route-side settings.
fn authentication(auth: &Authentication) -> (&'static str, Value) {
    match auth.type_ {
        AuthType::KeyAuth => {
            let header = auth.key_auth.as_ref().and_then(|k| k.header.clone());
            (
                "key-auth",
                header.map_or_else(|| json!({}), |h| json!({"header": h})),
            )
        }
        AuthType::BasicAuth => ("basic-auth", json!({})),
        AuthType::JwtAuth => {
            let mut conf = Map::new();
            if let Some(jwt) = &auth.jwt_auth {
                for (name, value) in [
                    ("header", &jwt.header),
                    ("query", &jwt.query),
                    ("cookie", &jwt.cookie),
                ] {
                    if let Some(v) = value {
                        conf.insert(name.into(), v.clone().into());
                    }
                }
            }
            ("jwt-auth", Value::Object(conf))
        }
        AuthType::WolfRbac => ("wolf-rbac", json!({})),
        AuthType::HmacAuth => ("hmac-auth", json!({})),
        AuthType::LdapAuth => {
            let ldap = auth.ldap_auth.clone();
            let mut conf = Map::new();
            if let Some(l) = ldap {
                conf.insert("base_dn".into(), l.base_dn.into());
                conf.insert("ldap_uri".into(), l.ldap_uri.into());
                if let Some(tls) = l.use_tls {
                    conf.insert("use_tls".into(), tls.into());
                }
                if let Some(uid) = l.uid {
                    conf.insert("uid".into(), uid.into());
                }
            }
            ("ldap-auth", Value::Object(conf))
        }
    }
}
