//! `networking.k8s.io/v1` Ingress → APISIX routes, upstreams and ssls.
//!
//! - One route per (rule, path); `spec.defaultBackend` becomes a catch-all
//!   route at the lowest priority (the reference ignores it).
//! - Path types: Exact → the path; Prefix → segment-aware (`/foo` matches
//!   `/foo` and `/foo/...`, not `/foobar`); ImplementationSpecific → the path
//!   as given, or a regular expression with `use-regex`.
//! - Priorities follow Ingress precedence: exact paths before prefixes,
//!   longer prefixes before shorter ones, regexes after, the default backend
//!   last.
//! - One upstream per (Service, port) of the Ingress; one ssl per `tls` entry.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend};
use serde_json::{Map, Value, json};

use super::annotations::{self, IngressAnnotations};
use super::backend::{self, PortRef, ResolvedBackend};
use super::shared_upstream::{self, UpstreamSource};
use super::{
    TranslateConfig, TranslateError, TranslateInput, Translation, UnitObjects, class, display_name,
    labels, tls,
};
use crate::apisix::{ApisixDir, IdKind, object_id};
use crate::inputs::{IngressClassKind, SecretKind, ServiceKind};
use crate::model::{
    Dependency, ObjectKey, Objects, SourceKind, StatusStyle, UnitDeps, UnitKey, UnitKind, WatchWhen,
};
use crate::translate::plugin_sets::ApisixPluginConfigKind;

pub const KIND: &str = "Ingress";

/// `networking.k8s.io/v1` Ingresses: units, served when their class is ours.
pub struct IngressKind;

impl SourceKind for IngressKind {
    type Object = Ingress;
    type Store = Objects<Ingress>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::Always;
}

impl UnitKind for IngressKind {
    const STATUS: StatusStyle = StatusStyle::EventsOnly;
    const SNI_FIELD: &'static str = "spec.tls";

    fn translate(input: TranslateInput<'_>, ingress: &Ingress) -> Translation {
        translate(input, ingress)
    }
}

/// Priority bands: exact > prefix > regex > default backend; within a band
/// a longer path wins.
const EXACT_BAND: i64 = 30_000;
const PREFIX_BAND: i64 = 20_000;
const REGEX_BAND: i64 = 10_000;
const MAX_PATH_BONUS: i64 = 9_999;

pub fn unit_key(ingress: &Ingress) -> UnitKey {
    UnitKey::new(
        KIND,
        Some(ingress.metadata.namespace.as_deref().unwrap_or("default")),
        ingress.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Translates one Ingress. An Ingress of another class yields no objects.
pub fn translate(input: TranslateInput<'_>, ingress: &Ingress) -> Translation {
    let mut deps = UnitDeps::new();
    deps.insert(Dependency::any(IngressClassKind::KIND));
    let result = if class::selects(input.config, input.snapshot, ingress) {
        IngressTranslator::new(input, ingress, &mut deps).and_then(|t| t.run())
    } else {
        Ok(UnitObjects::default())
    };
    Translation { result, deps }
}

struct IngressTranslator<'a> {
    input: TranslateInput<'a>,
    ingress: &'a Ingress,
    namespace: &'a str,
    name: &'a str,
    annotations: IngressAnnotations,
    deps: &'a mut UnitDeps,
    out: UnitObjects,
    /// Upstream ids already emitted, by (service, port).
    upstreams: BTreeMap<(ObjectKey, i32), (String, ResolvedBackend)>,
}

impl<'a> IngressTranslator<'a> {
    fn new(
        input: TranslateInput<'a>,
        ingress: &'a Ingress,
        deps: &'a mut UnitDeps,
    ) -> Result<IngressTranslator<'a>, TranslateError> {
        let raw: BTreeMap<String, String> =
            ingress.metadata.annotations.clone().unwrap_or_default();
        let mut annotations = annotations::parse(&raw)?;
        if let Some(schemas) = &input.config.schemas {
            for (name, conf) in &annotations.plugins {
                schemas.check(name, conf, crate::apisix::PluginUse::Http)?;
            }
        }
        super::encrypt_plugin_fields(&mut annotations.plugins, input.config.keyring.as_ref());
        Ok(IngressTranslator {
            input,
            ingress,
            namespace: ingress.metadata.namespace.as_deref().unwrap_or("default"),
            name: ingress.metadata.name.as_deref().unwrap_or_default(),
            annotations,
            deps,
            out: UnitObjects::default(),
            upstreams: BTreeMap::new(),
        })
    }

    /// The labels of this Ingress's routes and ssls: its own with
    /// `--copy-ingress-labels`, then ours. (Never of its upstreams, which
    /// Ingresses on one Service share.)
    fn object_labels(&mut self) -> Value {
        let user = self
            .input
            .config
            .copy_ingress_labels
            .then_some(self.ingress.metadata.labels.as_ref())
            .flatten();
        labels(
            self.input.config,
            KIND,
            self.namespace,
            self.name,
            user,
            &mut self.out.warnings,
        )
    }

    fn config(&self) -> &TranslateConfig {
        self.input.config
    }

    fn run(mut self) -> Result<UnitObjects, TranslateError> {
        let spec = self
            .ingress
            .spec
            .as_ref()
            .ok_or_else(|| TranslateError::Invalid("the Ingress has no spec".into()))?;
        if let Some(name) = &self.annotations.plugin_config_name {
            let key = ObjectKey::new(self.namespace, name);
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
                let annotation = format!("{}plugin-config-name", annotations::PREFIX);
                return Err(TranslateError::missing(
                    ApisixPluginConfigKind::KIND,
                    &key,
                    format!("annotation {annotation}={name:?}: ApisixPluginConfig {key} not found"),
                )
                .at(format!("metadata.annotations[{annotation}]")));
            }
        }
        let mut seen_routes = BTreeSet::new();
        for (index, rule) in spec.rules.iter().flatten().enumerate() {
            let field = format!("spec.rules[{index}]");
            let host = rule.host.as_deref().filter(|h| !h.is_empty());
            if let Some(host) = host {
                check_host(host).map_err(|error| error.at(format!("{field}.host")))?;
            }
            for (path_index, path) in rule.http.iter().flat_map(|http| &http.paths).enumerate() {
                self.route_for_path(host, path, &mut seen_routes)
                    .map_err(|error| error.at(format!("{field}.http.paths[{path_index}]")))?;
            }
        }
        if let Some(backend) = &spec.default_backend {
            self.default_route(backend)
                .map_err(|error| error.at("spec.defaultBackend"))?;
        }
        for (index, entry) in spec.tls.iter().flatten().enumerate() {
            self.ssl(index, entry)
                .map_err(|error| error.at(format!("spec.tls[{index}]")))?;
        }
        Ok(self.out)
    }

    fn route_for_path(
        &mut self,
        host: Option<&str>,
        path: &HTTPIngressPath,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), TranslateError> {
        let raw_path = path.path.clone().unwrap_or_else(|| "/".to_string());
        if !raw_path.starts_with('/') {
            return Err(TranslateError::Invalid(format!(
                "path {raw_path:?} must start with /"
            )));
        }
        let path_type = path.path_type.as_str();
        let matching = path_match(path_type, &raw_path, self.annotations.use_regex)?;
        let identity = format!(
            "{KIND}/{}/{}/{}/{}/{}",
            self.namespace,
            self.name,
            host.unwrap_or("*"),
            path_type,
            raw_path
        );
        if !seen.insert(identity.clone()) {
            // The same host, path and type twice: Kubernetes allows it, the
            // first backend wins (as the API server's own validation hints).
            return Ok(());
        }
        let upstream_id = self.upstream_for(&path.backend)?;
        let name = format!(
            "{}_{}_{}{}",
            self.namespace,
            self.name,
            host.unwrap_or(""),
            raw_path
        );
        self.route(RoutePlan {
            identity,
            name,
            host,
            matching,
            upstream_id,
        })
    }

    fn default_route(&mut self, backend: &IngressBackend) -> Result<(), TranslateError> {
        let upstream_id = self.upstream_for(backend)?;
        let identity = format!("{KIND}/{}/{}/default-backend", self.namespace, self.name);
        let name = format!("{}_{}_default-backend", self.namespace, self.name);
        self.route(RoutePlan {
            identity,
            name,
            host: None,
            matching: PathMatch {
                uris: vec!["/*".to_string()],
                vars: None,
                priority: 0,
            },
            upstream_id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn route(&mut self, plan: RoutePlan<'_>) -> Result<(), TranslateError> {
        let RoutePlan {
            identity,
            name,
            host,
            matching,
            upstream_id,
        } = plan;
        let upstream_id = upstream_id.as_str();
        let id = object_id(&self.config().ownership, IdKind::Route, &identity);
        let mut route = Map::new();
        route.insert("id".into(), id.clone().into());
        route.insert("name".into(), display_name(name).into());
        route.insert("uris".into(), matching.uris.into());
        if let Some(host) = host {
            route.insert("host".into(), host.into());
        }
        if let Some(vars) = matching.vars {
            route.insert("vars".into(), vars);
        }
        route.insert("priority".into(), matching.priority.into());
        route.insert("upstream_id".into(), upstream_id.into());
        route.insert("labels".into(), self.object_labels());
        let websocket = self.annotations.enable_websocket
            || self
                .upstreams
                .values()
                .any(|(id, b)| id == upstream_id && b.websocket);
        if websocket {
            route.insert("enable_websocket".into(), true.into());
        }
        if !self.annotations.plugins.is_empty() {
            route.insert("plugins".into(), json!(self.annotations.plugins));
        }
        if let Some(config_name) = &self.annotations.plugin_config_name {
            route.insert(
                "plugin_config_id".into(),
                super::plugin_sets::plugin_config_id(self.config(), self.namespace, config_name)
                    .into(),
            );
        }
        let config = self.input.config;
        self.out
            .add(config, ApisixDir::Routes, &id, Value::Object(route))
    }

    /// The upstream of a backend, created once per (Service, port).
    fn upstream_for(&mut self, backend: &IngressBackend) -> Result<String, TranslateError> {
        let service = backend.service.as_ref().ok_or_else(|| {
            TranslateError::Invalid(
                "only Service backends are supported (not resource backends)".into(),
            )
        })?;
        let namespace = self
            .annotations
            .svc_namespace
            .as_deref()
            .unwrap_or(self.namespace);
        let key = ObjectKey::new(namespace, &service.name);
        self.deps
            .insert(Dependency::object(ServiceKind::KIND, key.clone()));
        let port = match &service.port {
            Some(port) => match (port.number, &port.name) {
                (Some(n), _) => PortRef::Number(n),
                (None, Some(name)) => PortRef::Name(name.clone()),
                (None, None) => {
                    return Err(TranslateError::Backend {
                        service: key.to_string(),
                        reason: "the backend names no port".into(),
                    });
                }
            },
            None => {
                return Err(TranslateError::Backend {
                    service: key.to_string(),
                    reason: "the backend names no port".into(),
                });
            }
        };
        let resolved = backend::resolve(self.input.snapshot, &key, &port)?;
        if let Some((id, _)) = self.upstreams.get(&(key.clone(), resolved.service_port)) {
            return Ok(id.clone());
        }
        let source = UpstreamSource {
            namespace: &key.namespace,
            name: &key.name,
            kind: ServiceKind::KIND,
            port: resolved.service_port,
            granularity: "endpoint",
            subset: None,
        };
        let settings = &self.annotations.upstream;
        let scheme = settings
            .scheme
            .clone()
            .or(resolved.scheme.map(str::to_string))
            .unwrap_or_else(|| "http".to_string());
        let nodes: Vec<Value> = resolved.nodes.iter().map(|n| n.to_json(100)).collect();
        let mut upstream = Map::new();
        upstream.insert(
            "name".into(),
            display_name(format!(
                "{}_{}_{}",
                key.namespace, key.name, resolved.service_port
            ))
            .into(),
        );
        upstream.insert("type".into(), "roundrobin".into());
        upstream.insert("scheme".into(), scheme.into());
        upstream.insert("nodes".into(), nodes.into());
        let (connect, send, read) = settings.timeout;
        upstream.insert(
            "timeout".into(),
            json!({"connect": connect, "send": send, "read": read}),
        );
        if let Some(retries) = settings.retries {
            upstream.insert("retries".into(), retries.into());
        }
        upstream.insert(
            "labels".into(),
            shared_upstream::labels(self.input.config, &source, None, &mut self.out.warnings),
        );
        let id = shared_upstream::assign_id(self.config(), &source, &mut upstream);
        let config = self.input.config;
        self.out
            .add(config, ApisixDir::Upstreams, &id, Value::Object(upstream))?;
        self.upstreams
            .insert((key, resolved.service_port), (id.clone(), resolved));
        Ok(id)
    }

    fn ssl(
        &mut self,
        index: usize,
        entry: &k8s_openapi::api::networking::v1::IngressTLS,
    ) -> Result<(), TranslateError> {
        let secret_name = entry
            .secret_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TranslateError::Invalid(format!("tls[{index}] names no secretName")))?;
        let key = ObjectKey::new(self.namespace, secret_name);
        self.deps
            .insert(Dependency::object(SecretKind::KIND, key.clone()));
        let hosts: Vec<String> = entry.hosts.clone().unwrap_or_default();
        if hosts.is_empty() {
            return Err(TranslateError::Tls {
                secret: key.to_string(),
                reason: format!("tls[{index}] lists no hosts (APISIX needs SNIs)"),
            });
        }
        for host in &hosts {
            check_host(host)?;
        }
        let (cert, mut private_key) = tls::key_pair(self.input.snapshot, &key)?;
        if let Some(keyring) = &self.config().keyring {
            // APISIX encrypts PEM ssl keys whenever a keyring is configured.
            private_key = keyring.encrypt(&private_key);
        }
        let identity = format!(
            "{KIND}/{}/{}/tls/{secret_name}/{}",
            self.namespace,
            self.name,
            hosts.join(",")
        );
        let id = object_id(&self.config().ownership, IdKind::Ssl, &identity);
        let mut value = tls::ssl_value(cert, private_key, &hosts, self.object_labels());
        value["id"] = id.clone().into();
        let config = self.input.config;
        self.out.add(config, ApisixDir::Ssls, &id, value)
    }
}

/// `/foo` → `/foo` and `/foo/*` (so `/foobar` does not match); `/foo/` is the
/// same prefix as `/foo`; `/` matches everything.
/// How one route matches requests.
struct PathMatch {
    uris: Vec<String>,
    vars: Option<Value>,
    priority: i64,
}

/// One route of the Ingress, before it becomes an APISIX value.
struct RoutePlan<'h> {
    /// What its id is derived from.
    identity: String,
    name: String,
    host: Option<&'h str>,
    matching: PathMatch,
    upstream_id: String,
}

/// A path of `path_type` → its uris, vars and priority (see the bands).
fn path_match(
    path_type: &str,
    raw_path: &str,
    use_regex: bool,
) -> Result<PathMatch, TranslateError> {
    let (uris, vars, priority) = match path_type {
        "Exact" => (
            vec![raw_path.to_string()],
            None,
            EXACT_BAND + bonus(raw_path),
        ),
        "Prefix" => (prefix_uris(raw_path), None, PREFIX_BAND + bonus(raw_path)),
        "ImplementationSpecific" if use_regex => {
            regex::Regex::new(raw_path).map_err(|e| {
                TranslateError::Invalid(format!(
                    "path {raw_path:?} is not a valid regular expression: {e}"
                ))
            })?;
            (
                vec!["/*".to_string()],
                Some(json!([["uri", "~~", raw_path]])),
                REGEX_BAND + bonus(raw_path),
            )
        }
        "ImplementationSpecific" => (
            vec![raw_path.to_string()],
            None,
            EXACT_BAND + bonus(raw_path),
        ),
        other => {
            return Err(TranslateError::Invalid(format!(
                "unknown pathType {other:?} for path {raw_path:?}"
            )));
        }
    };
    Ok(PathMatch {
        uris,
        vars,
        priority,
    })
}

pub fn prefix_uris(path: &str) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return vec!["/*".to_string()];
    }
    vec![trimmed.to_string(), format!("{trimmed}/*")]
}

fn bonus(path: &str) -> i64 {
    i64::try_from(path.trim_end_matches('/').len())
        .unwrap_or(MAX_PATH_BONUS)
        .min(MAX_PATH_BONUS)
}

/// APISIX's host pattern: `*` or an optional leading `*` and
/// `[0-9a-zA-Z-._]`; Kubernetes only allows `*.` as a wildcard prefix.
fn check_host(host: &str) -> Result<(), TranslateError> {
    let body = host.strip_prefix("*.").unwrap_or(host);
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(TranslateError::Invalid(format!(
            "host {host:?} is not a valid host name"
        )))
    }
}
