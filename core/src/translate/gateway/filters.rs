//! HTTPRoute filters → APISIX plugins, for one match of a rule (a prefix
//! replacement depends on the match's path):
//!
//! | filter | plugin |
//! |---|---|
//! | RequestHeaderModifier | `proxy-rewrite` `headers` (set, add, remove) |
//! | URLRewrite | `proxy-rewrite` `host`, `uri` (ReplaceFullPath) or `regex_uri` (ReplacePrefixMatch) |
//! | ResponseHeaderModifier | `response-rewrite` `headers` |
//! | RequestRedirect | `redirect` (`uri` or `regex_uri`, `ret_code`) |
//! | RequestMirror | `proxy-mirror` (`host`, `sample_ratio`) |
//!
//! Any other filter type (ExtensionRef, CORS, ExternalAuth) is unsupported:
//! the rule is not skipped but answers 500, and the route says why.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::api::gateway::{
    BackendObjectRef, HeaderModifier, HttpRouteFilter, PathModifier, RequestMirror,
    RequestRedirect, UrlRewrite,
};

/// Why a rule's filters cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// A feature this controller does not implement (`UnsupportedValue`).
    Unsupported(String),
    /// A mirror's backend does not resolve (`ResolvedRefs=False` with this
    /// reason).
    Unresolved {
        reason: &'static str,
        message: String,
    },
}

/// The plugins of one match, whether one of them answers the request
/// itself (a redirect), so the rule needs no backend, and a mirror left out
/// because its backend does not resolve (reason, message).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterPlugins {
    pub plugins: BTreeMap<String, Value>,
    pub responds: bool,
    pub unresolved: Option<(&'static str, String)>,
}

/// What the filters need to know about the match and its listeners.
pub struct MatchContext<'a> {
    /// The match's path prefix (`PathPrefix` matches), without a trailing
    /// slash: what `ReplacePrefixMatch` replaces.
    pub prefix: Option<&'a str>,
    /// The ports of the listeners the route attached to (a redirect without
    /// scheme or port keeps the listener's port).
    pub listener_ports: &'a BTreeSet<i32>,
    /// The scheme of those listeners, when they have one scheme.
    pub scheme: Option<&'static str>,
}

/// Resolves a mirror's backend to `scheme://address:port`.
pub type MirrorResolver<'a> = dyn FnMut(&BackendObjectRef) -> Result<String, FilterError> + 'a;

pub fn plugins(
    filters: &[HttpRouteFilter],
    context: &MatchContext<'_>,
    mirror: &mut MirrorResolver<'_>,
) -> Result<FilterPlugins, FilterError> {
    let mut out = FilterPlugins::default();
    let mut rewrite = Map::new();
    for filter in filters {
        match (filter.filter_type.as_str(), filter) {
            (
                "RequestHeaderModifier",
                HttpRouteFilter {
                    request_header_modifier: Some(m),
                    ..
                },
            ) => {
                if let Some(headers) = request_headers(m) {
                    rewrite.insert("headers".into(), headers);
                }
            }
            (
                "URLRewrite",
                HttpRouteFilter {
                    url_rewrite: Some(r),
                    ..
                },
            ) => {
                url_rewrite(r, context, &mut rewrite)?;
            }
            (
                "ResponseHeaderModifier",
                HttpRouteFilter {
                    response_header_modifier: Some(m),
                    ..
                },
            ) => {
                if let Some(headers) = response_headers(m)? {
                    out.plugins
                        .insert("response-rewrite".into(), json!({"headers": headers}));
                }
            }
            (
                "RequestRedirect",
                HttpRouteFilter {
                    request_redirect: Some(r),
                    ..
                },
            ) => {
                let (conf, path_rewrite) = redirect(r, context)?;
                out.plugins.insert("redirect".into(), conf);
                if let Some(regex_uri) = path_rewrite {
                    rewrite.insert("regex_uri".into(), regex_uri);
                }
                out.responds = true;
            }
            (
                "RequestMirror",
                HttpRouteFilter {
                    request_mirror: Some(m),
                    ..
                },
            ) => {
                if out.plugins.contains_key("proxy-mirror") {
                    return Err(FilterError::Unsupported(
                        "more than one RequestMirror filter in a rule (APISIX mirrors to one host)"
                            .into(),
                    ));
                }
                match request_mirror(m, mirror) {
                    Ok(Some(conf)) => {
                        out.plugins.insert("proxy-mirror".into(), conf);
                    }
                    Ok(None) => {}
                    // The rule is served without its mirror, and says why.
                    Err(FilterError::Unresolved { reason, message }) => {
                        out.unresolved = Some((reason, message));
                    }
                    Err(unsupported) => return Err(unsupported),
                }
            }
            (
                known @ ("RequestHeaderModifier"
                | "URLRewrite"
                | "ResponseHeaderModifier"
                | "RequestRedirect"
                | "RequestMirror"),
                _,
            ) => {
                return Err(FilterError::Unsupported(format!(
                    "filter {known} without its settings"
                )));
            }
            (other, _) => {
                return Err(FilterError::Unsupported(format!(
                    "filter type {other} is not supported"
                )));
            }
        }
    }
    if !rewrite.is_empty() {
        out.plugins
            .insert("proxy-rewrite".into(), Value::Object(rewrite));
    }
    Ok(out)
}

fn request_headers(m: &HeaderModifier) -> Option<Value> {
    let pairs = |values: &[crate::api::gateway::HeaderValue]| -> Map<String, Value> {
        values
            .iter()
            .map(|h| (h.name.clone(), Value::String(h.value.clone())))
            .collect()
    };
    let mut headers = Map::new();
    if !m.set.is_empty() {
        headers.insert("set".into(), Value::Object(pairs(&m.set)));
    }
    if !m.add.is_empty() {
        headers.insert("add".into(), Value::Object(pairs(&m.add)));
    }
    if !m.remove.is_empty() {
        headers.insert("remove".into(), json!(m.remove));
    }
    (!headers.is_empty()).then_some(Value::Object(headers))
}

/// `response-rewrite` takes added headers as `name: value` strings, whose
/// value may hold no `:` and may not end in `/`.
fn response_headers(m: &HeaderModifier) -> Result<Option<Value>, FilterError> {
    let mut headers = Map::new();
    if !m.set.is_empty() {
        let set: Map<String, Value> = m
            .set
            .iter()
            .map(|h| (h.name.clone(), Value::String(h.value.clone())))
            .collect();
        headers.insert("set".into(), Value::Object(set));
    }
    if !m.add.is_empty() {
        let mut add = Vec::new();
        for h in &m.add {
            if h.value.contains(':') || h.value.ends_with('/') || h.value.is_empty() {
                return Err(FilterError::Unsupported(format!(
                    "ResponseHeaderModifier add {}: APISIX cannot add a response header whose value is empty, holds ':' or ends in '/'",
                    h.name
                )));
            }
            add.push(Value::String(format!("{}: {}", h.name, h.value)));
        }
        headers.insert("add".into(), Value::Array(add));
    }
    if !m.remove.is_empty() {
        headers.insert("remove".into(), json!(m.remove));
    }
    Ok((!headers.is_empty()).then_some(Value::Object(headers)))
}

fn url_rewrite(
    r: &UrlRewrite,
    context: &MatchContext<'_>,
    rewrite: &mut Map<String, Value>,
) -> Result<(), FilterError> {
    if let Some(host) = &r.hostname {
        rewrite.insert("host".into(), host.clone().into());
    }
    match r.path.as_ref().map(|p| (p.modifier_type.as_str(), p)) {
        None => {}
        Some((
            "ReplaceFullPath",
            PathModifier {
                replace_full_path: Some(path),
                ..
            },
        )) => {
            rewrite.insert("uri".into(), path.clone().into());
        }
        Some((
            "ReplacePrefixMatch",
            PathModifier {
                replace_prefix_match: Some(with),
                ..
            },
        )) => {
            let prefix = prefix_of(context, "URLRewrite")?;
            rewrite.insert("regex_uri".into(), prefix_replacement(prefix, with));
        }
        Some((other, _)) => {
            return Err(FilterError::Unsupported(format!(
                "URLRewrite path type {other} without its value"
            )));
        }
    }
    Ok(())
}

/// `proxy-rewrite` `regex_uri` pairs replacing the path prefix `prefix`
/// (without a trailing slash) by `with`: `/p/rest` → `<with>/rest`, `/p` →
/// `<with>` (`/` when that is empty).
fn prefix_replacement(prefix: &str, with: &str) -> Value {
    let with = with.trim_end_matches('/');
    let escaped = regex::escape(prefix);
    json!([
        format!("^{escaped}/(.*)$"),
        format!("{with}/$1"),
        format!("^{escaped}$"),
        if with.is_empty() { "/" } else { with }
    ])
}

fn prefix_of<'a>(context: &MatchContext<'a>, filter: &str) -> Result<&'a str, FilterError> {
    context.prefix.ok_or_else(|| {
        FilterError::Unsupported(format!(
            "{filter} ReplacePrefixMatch needs a PathPrefix match"
        ))
    })
}

/// The `redirect` configuration, and for a prefix replacement the
/// `proxy-rewrite` `regex_uri` that computes the new path: APISIX expands
/// variables in a redirect's `uri` but not in its `regex_uri` replacement,
/// so the path is rewritten first (`proxy-rewrite` runs before `redirect`)
/// and the redirect names `$upstream_uri` (the new path and the query).
fn redirect(
    r: &RequestRedirect,
    context: &MatchContext<'_>,
) -> Result<(Value, Option<Value>), FilterError> {
    let origin = redirect_origin(r, context);
    let mut conf = Map::new();
    conf.insert("ret_code".into(), r.status_code.unwrap_or(302).into());
    let mut rewrite = None;
    match r.path.as_ref().map(|p| (p.modifier_type.as_str(), p)) {
        None => {
            conf.insert("uri".into(), format!("{origin}$request_uri").into());
        }
        Some((
            "ReplaceFullPath",
            PathModifier {
                replace_full_path: Some(path),
                ..
            },
        )) => {
            conf.insert("uri".into(), format!("{origin}{path}").into());
            conf.insert("append_query_string".into(), true.into());
        }
        Some((
            "ReplacePrefixMatch",
            PathModifier {
                replace_prefix_match: Some(with),
                ..
            },
        )) => {
            let prefix = prefix_of(context, "RequestRedirect")?;
            rewrite = Some(prefix_replacement(prefix, with));
            conf.insert("uri".into(), format!("{origin}$upstream_uri").into());
        }
        Some((other, _)) => {
            return Err(FilterError::Unsupported(format!(
                "RequestRedirect path type {other} without its value"
            )));
        }
    }
    Ok((Value::Object(conf), rewrite))
}

/// `scheme://host[:port]` of a redirect: the filter's, else the request's.
/// The port is left out when it is the well-known port of the scheme the
/// client will use; without a port or scheme in the filter, the listener's
/// (when the route has one listener port that is not well known).
fn redirect_origin(r: &RequestRedirect, context: &MatchContext<'_>) -> String {
    let effective = r.scheme.as_deref().or(context.scheme);
    let port = match (r.port, effective) {
        (Some(port), Some(scheme)) if well_known(scheme, port) => None,
        (Some(port), _) => Some(port),
        (None, _) if r.scheme.is_some() => None,
        (None, _) => match context.listener_ports.iter().collect::<Vec<_>>().as_slice() {
            [port] if ![80, 443].contains(*port) => Some(**port),
            _ => None,
        },
    };
    format!(
        "{}://{}{}",
        r.scheme.as_deref().unwrap_or("$scheme"),
        r.hostname.as_deref().unwrap_or("$host"),
        port.map(|p| format!(":{p}")).unwrap_or_default()
    )
}

fn well_known(scheme: &str, port: i32) -> bool {
    matches!((scheme, port), ("http", 80) | ("https", 443))
}

fn request_mirror(
    m: &RequestMirror,
    resolve: &mut MirrorResolver<'_>,
) -> Result<Option<Value>, FilterError> {
    let ratio = match (m.percent, &m.fraction) {
        (Some(percent), _) => f64::from(percent) / 100.0,
        (None, Some(f)) => f64::from(f.numerator) / f64::from(f.denominator.unwrap_or(100).max(1)),
        (None, None) => 1.0,
    };
    if ratio <= 0.0 {
        return Ok(None);
    }
    let host = resolve(&m.backend_ref)?;
    Ok(Some(
        json!({"host": host, "sample_ratio": ratio.clamp(0.00001, 1.0)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(value: Value) -> Vec<HttpRouteFilter> {
        serde_json::from_value(value).unwrap()
    }

    fn run(
        value: Value,
        prefix: Option<&str>,
        ports: &[i32],
    ) -> Result<FilterPlugins, FilterError> {
        let ports: BTreeSet<i32> = ports.iter().copied().collect();
        let context = MatchContext {
            prefix,
            listener_ports: &ports,
            scheme: Some("http"),
        };
        let mut mirror =
            |b: &BackendObjectRef| Ok(format!("http://10.96.0.9:{}", b.port.unwrap_or(80)));
        plugins(&filters(value), &context, &mut mirror)
    }

    #[test]
    fn header_modifiers_and_rewrites() {
        let out = run(json!([
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-A", "value": "1"}], "add": [{"name": "X-B", "value": "2"}], "remove": ["X-C"]}},
            {"type": "URLRewrite", "urlRewrite": {"hostname": "internal.example", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "X-R", "value": "yes"}], "remove": ["Server"]}},
        ]), Some("/v1"), &[80]).unwrap();
        assert_eq!(
            out.plugins["proxy-rewrite"],
            json!({
                "headers": {"set": {"X-A": "1"}, "add": {"X-B": "2"}, "remove": ["X-C"]},
                "host": "internal.example",
                "regex_uri": ["^/v1/(.*)$", "/v2/$1", "^/v1$", "/v2"],
            })
        );
        assert_eq!(
            out.plugins["response-rewrite"],
            json!({"headers": {"add": ["X-R: yes"], "remove": ["Server"]}})
        );
        assert!(!out.responds);
    }

    #[test]
    fn prefix_replacement_by_root() {
        let out = run(json!([{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]), Some("/api"), &[80]).unwrap();
        assert_eq!(
            out.plugins["proxy-rewrite"]["regex_uri"],
            json!(["^/api/(.*)$", "/$1", "^/api$", "/"])
        );
        let err = run(json!([{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]), None, &[80]).unwrap_err();
        assert!(matches!(err, FilterError::Unsupported(m) if m.contains("PathPrefix")));
    }

    #[test]
    fn redirects() {
        let https = run(json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]), Some(""), &[80]).unwrap();
        assert!(https.responds);
        assert_eq!(
            https.plugins["redirect"],
            json!({"ret_code": 301, "uri": "https://$host$request_uri"})
        );
        let port = run(json!([{"type": "RequestRedirect", "requestRedirect": {"hostname": "example.org", "port": 8443}}]), None, &[80]).unwrap();
        assert_eq!(
            port.plugins["redirect"]["uri"],
            json!("$scheme://example.org:8443$request_uri")
        );
        let listener = run(json!([{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}]), None, &[8080]).unwrap();
        assert_eq!(
            listener.plugins["redirect"],
            json!({"ret_code": 302, "uri": "$scheme://$host:8080/new", "append_query_string": true})
        );
        let prefix = run(json!([{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new/"}}}]), Some("/old"), &[80]).unwrap();
        assert_eq!(
            prefix.plugins["redirect"],
            json!({"ret_code": 302, "uri": "$scheme://$host$upstream_uri"}),
            "APISIX expands variables in uri, not in regex_uri"
        );
        assert_eq!(
            prefix.plugins["proxy-rewrite"]["regex_uri"],
            json!(["^/old/(.*)$", "/new/$1", "^/old$", "/new"])
        );
        // Port 80 is kept when the client will not be on plain HTTP.
        let to_80 = run(json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "port": 80}}]), None, &[80]).unwrap();
        assert_eq!(
            to_80.plugins["redirect"]["uri"],
            json!("https://$host:80$request_uri")
        );
        let kept = run(
            json!([{"type": "RequestRedirect", "requestRedirect": {"port": 80}}]),
            None,
            &[80],
        )
        .unwrap();
        assert_eq!(
            kept.plugins["redirect"]["uri"],
            json!("$scheme://$host$request_uri")
        );
    }

    #[test]
    fn an_unresolved_mirror_keeps_the_other_filters() {
        let ports: BTreeSet<i32> = [80].into_iter().collect();
        let context = MatchContext {
            prefix: Some("/a"),
            listener_ports: &ports,
            scheme: None,
        };
        let mut missing = |_: &BackendObjectRef| {
            Err(FilterError::Unresolved {
                reason: "BackendNotFound",
                message: "gone".into(),
            })
        };
        let out = plugins(&filters(json!([
            {"type": "URLRewrite", "urlRewrite": {"hostname": "internal.example"}},
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}}},
        ])), &context, &mut missing).unwrap();
        assert_eq!(out.plugins["proxy-rewrite"]["host"], "internal.example");
        assert!(!out.plugins.contains_key("proxy-mirror"));
        assert_eq!(
            out.unresolved,
            Some(("BackendNotFound", "gone".to_string()))
        );
    }

    #[test]
    fn mirrors_and_unsupported_filters() {
        let out = run(json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}, "percent": 25}}]), None, &[80]).unwrap();
        assert_eq!(
            out.plugins["proxy-mirror"],
            json!({"host": "http://10.96.0.9:8080", "sample_ratio": 0.25})
        );
        let none = run(json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow"}, "percent": 0}}]), None, &[80]).unwrap();
        assert!(none.plugins.is_empty());
        for filter in [
            json!({"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}),
            json!({"type": "CORS", "cors": {}}),
        ] {
            assert!(matches!(
                run(json!([filter]), None, &[80]),
                Err(FilterError::Unsupported(_))
            ));
        }
        let colon = run(
            json!([{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "Link", "value": "http://x"}]}}]),
            None,
            &[80],
        );
        assert!(matches!(colon, Err(FilterError::Unsupported(m)) if m.contains("Link")));
    }
}
