//! The `k8s.apisix.apache.org/*` Ingress annotations, with the reference
//! controller's meaning. Unlike the reference, an invalid value is an error
//! for the Ingress (never silently dropped), and lists are trimmed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::TranslateError;

pub const PREFIX: &str = "k8s.apisix.apache.org/";

/// Upstream settings from annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSettings {
    pub scheme: Option<String>,
    pub retries: Option<u32>,
    /// connect, send, read (seconds). The reference always sets 60/60/60.
    pub timeout: (f64, f64, f64),
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            scheme: None,
            retries: None,
            timeout: (60.0, 60.0, 60.0),
        }
    }
}

/// Everything the annotations of one Ingress ask for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressAnnotations {
    pub use_regex: bool,
    pub enable_websocket: bool,
    pub plugin_config_name: Option<String>,
    pub svc_namespace: Option<String>,
    pub upstream: UpstreamSettings,
    /// Plugins put on every route of the Ingress.
    pub plugins: BTreeMap<String, Value>,
}

struct Reader<'a> {
    annotations: &'a BTreeMap<String, String>,
}

fn error(annotation: &str, value: &str, reason: impl Into<String>) -> TranslateError {
    TranslateError::Annotation {
        annotation: format!("{PREFIX}{annotation}"),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        self.annotations
            .get(&format!("{PREFIX}{name}"))
            .map(String::as_str)
    }

    fn string(&self, name: &str) -> Result<Option<String>, TranslateError> {
        match self.raw(name) {
            Some(value) if value.trim().is_empty() => Err(error(name, value, "must not be empty")),
            Some(value) => Ok(Some(value.trim().to_string())),
            None => Ok(None),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, TranslateError> {
        match self.raw(name) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(error(name, other, "must be \"true\" or \"false\"")),
        }
    }

    fn list(&self, name: &str) -> Result<Option<Vec<String>>, TranslateError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        let items: Vec<String> = value
            .split(',')
            .map(|item| item.trim().to_string())
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Err(error(name, value, "must list at least one value"));
        }
        Ok(Some(items))
    }

    fn seconds(&self, name: &str) -> Result<Option<f64>, TranslateError> {
        let Some(value) = self.raw(name) else {
            return Ok(None);
        };
        parse_seconds(value).map(Some).ok_or_else(|| {
            error(
                name,
                value,
                "must be a positive duration such as 5, 5s, 1.5s or 2m",
            )
        })
    }
}

/// `N`, `Ns`, `Nms` or `Nm`, N a positive number → seconds.
fn parse_seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else {
        (value, 1.0)
    };
    let seconds = number.parse::<f64>().ok()? * scale;
    (seconds.is_finite() && seconds > 0.0).then_some(seconds)
}

const HTTP_METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

fn methods(reader: &Reader<'_>, name: &str) -> Result<Option<Vec<String>>, TranslateError> {
    let Some(list) = reader.list(name)? else {
        return Ok(None);
    };
    let upper: Vec<String> = list.iter().map(|m| m.to_ascii_uppercase()).collect();
    if let Some(bad) = upper.iter().find(|m| !HTTP_METHODS.contains(&m.as_str())) {
        return Err(error(
            name,
            reader.raw(name).unwrap_or_default(),
            format!("{bad} is not an HTTP method"),
        ));
    }
    Ok(Some(upper))
}

fn cidrs(reader: &Reader<'_>, name: &str) -> Result<Option<Vec<String>>, TranslateError> {
    let Some(list) = reader.list(name)? else {
        return Ok(None);
    };
    for item in &list {
        if !is_ip_or_cidr(item) {
            return Err(error(
                name,
                reader.raw(name).unwrap_or_default(),
                format!("{item} is not an IP address or CIDR"),
            ));
        }
    }
    Ok(Some(list))
}

fn is_ip_or_cidr(value: &str) -> bool {
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

/// `k:v,k:v` → pairs.
fn header_pairs(
    reader: &Reader<'_>,
    name: &str,
) -> Result<Option<Vec<(String, String)>>, TranslateError> {
    let Some(list) = reader.list(name)? else {
        return Ok(None);
    };
    list.iter()
        .map(|item| {
            item.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    error(
                        name,
                        reader.raw(name).unwrap_or_default(),
                        format!("{item} is not header:value"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn check_regex(name: &str, value: &str) -> Result<(), TranslateError> {
    regex::Regex::new(value)
        .map(|_| ())
        .map_err(|e| error(name, value, format!("not a valid regular expression: {e}")))
}

/// Parses every annotation of the prefix. Unknown ones under the prefix are
/// errors too: a typo should not silently do nothing.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<IngressAnnotations, TranslateError> {
    let r = Reader { annotations };
    for key in annotations.keys() {
        if let Some(name) = key
            .strip_prefix(PREFIX)
            .filter(|name| !KNOWN.contains(name))
        {
            return Err(error(name, &annotations[key], "unknown annotation"));
        }
    }
    let mut out = IngressAnnotations {
        use_regex: r.flag("use-regex")?,
        enable_websocket: r.flag("enable-websocket")?,
        plugin_config_name: r.string("plugin-config-name")?,
        svc_namespace: r.string("svc-namespace")?,
        upstream: upstream(&r)?,
        plugins: BTreeMap::new(),
    };
    for read in PLUGIN_READERS {
        if let Some((plugin, conf)) = read(&r)? {
            out.plugins.insert(plugin.to_string(), conf);
        }
    }
    Ok(out)
}

/// Reads the annotations of one plugin: its name and configuration, when
/// the annotations ask for it.
type PluginReader = fn(&Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError>;

/// Every plugin the annotations can ask for (each at most once).
const PLUGIN_READERS: [PluginReader; 9] = [
    cors,
    csrf,
    redirect,
    proxy_rewrite,
    response_rewrite,
    method_filter,
    ip_restriction,
    auth_type,
    forward_auth,
];

fn upstream(r: &Reader<'_>) -> Result<UpstreamSettings, TranslateError> {
    let mut upstream = UpstreamSettings::default();
    if let Some(scheme) = r.string("upstream-scheme")? {
        let lower = scheme.to_ascii_lowercase();
        if !["http", "https", "grpc", "grpcs"].contains(&lower.as_str()) {
            return Err(error(
                "upstream-scheme",
                &scheme,
                "must be one of http, https, grpc, grpcs",
            ));
        }
        upstream.scheme = Some(lower);
    }
    if let Some(retries) = r.string("upstream-retries")? {
        let parsed = retries.parse::<u32>().map_err(|_| {
            error(
                "upstream-retries",
                &retries,
                "must be a non-negative integer",
            )
        })?;
        // As in the reference, 0 leaves APISIX's default (retry on every node).
        upstream.retries = (parsed > 0).then_some(parsed);
    }
    let (connect, send, read) = upstream.timeout;
    upstream.timeout = (
        r.seconds("upstream-connect-timeout")?.unwrap_or(connect),
        r.seconds("upstream-send-timeout")?.unwrap_or(send),
        r.seconds("upstream-read-timeout")?.unwrap_or(read),
    );
    Ok(upstream)
}

fn cors(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    if !r.flag("enable-cors")? {
        return Ok(None);
    }
    let mut cors = serde_json::Map::new();
    for (annotation, field) in [
        ("cors-allow-origin", "allow_origins"),
        ("cors-allow-methods", "allow_methods"),
        ("cors-allow-headers", "allow_headers"),
    ] {
        if let Some(value) = r.string(annotation)? {
            cors.insert(field.into(), Value::String(value));
        }
    }
    Ok(Some(("cors", Value::Object(cors))))
}

fn csrf(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    if !r.flag("enable-csrf")? {
        return Ok(None);
    }
    let key = r.string("csrf-key")?.ok_or_else(|| {
        error(
            "enable-csrf",
            "true",
            "needs k8s.apisix.apache.org/csrf-key",
        )
    })?;
    Ok(Some(("csrf", json!({"key": key}))))
}

fn redirect(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let to_https = r.flag("http-to-https")?;
    let Some(uri) = r.string("http-redirect")? else {
        return Ok(to_https.then(|| ("redirect", json!({"http_to_https": true}))));
    };
    if to_https {
        return Err(error("http-redirect", &uri, "conflicts with http-to-https"));
    }
    let code = match r.string("http-redirect-code")? {
        Some(code) => code
            .parse::<u16>()
            .ok()
            .filter(|c| (301..=308).contains(c))
            .ok_or_else(|| {
                error(
                    "http-redirect-code",
                    &code,
                    "must be a redirect status from 301 to 308",
                )
            })?,
        None => 301,
    };
    Ok(Some(("redirect", json!({"uri": uri, "ret_code": code}))))
}

fn proxy_rewrite(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let target = r.string("rewrite-target")?;
    let target_regex = r.string("rewrite-target-regex")?;
    let template = r.string("rewrite-target-regex-template")?;
    match (target, target_regex, template) {
        (Some(t), Some(_), _) => Err(error(
            "rewrite-target",
            &t,
            "conflicts with rewrite-target-regex",
        )),
        (Some(uri), None, None) => Ok(Some(("proxy-rewrite", json!({"uri": uri})))),
        (None, Some(regex), Some(template)) => {
            check_regex("rewrite-target-regex", &regex)?;
            Ok(Some((
                "proxy-rewrite",
                json!({"regex_uri": [regex, template]}),
            )))
        }
        (_, Some(regex), None) => Err(error(
            "rewrite-target-regex",
            &regex,
            "needs rewrite-target-regex-template",
        )),
        (_, None, Some(template)) => Err(error(
            "rewrite-target-regex-template",
            &template,
            "needs rewrite-target-regex",
        )),
        (None, None, None) => Ok(None),
    }
}

fn response_rewrite(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    if !r.flag("enable-response-rewrite")? {
        return Ok(None);
    }
    let mut rewrite = serde_json::Map::new();
    if let Some(code) = r.string("response-rewrite-status-code")? {
        let status = code
            .parse::<u16>()
            .ok()
            .filter(|c| (200..=598).contains(c))
            .ok_or_else(|| {
                error(
                    "response-rewrite-status-code",
                    &code,
                    "must be an HTTP status from 200 to 598",
                )
            })?;
        rewrite.insert("status_code".into(), status.into());
    }
    if let Some(body) = r.raw("response-rewrite-body") {
        rewrite.insert("body".into(), body.into());
    }
    if r.flag("response-rewrite-body-base64")? {
        rewrite.insert("body_base64".into(), true.into());
    }
    let headers = response_headers(r)?;
    if !headers.is_empty() {
        rewrite.insert("headers".into(), Value::Object(headers));
    }
    if rewrite.is_empty() {
        return Err(error(
            "enable-response-rewrite",
            "true",
            "set a status code, body or header change",
        ));
    }
    Ok(Some(("response-rewrite", Value::Object(rewrite))))
}

/// `headers` of response-rewrite: headers to add, set and remove.
fn response_headers(r: &Reader<'_>) -> Result<serde_json::Map<String, Value>, TranslateError> {
    let mut headers = serde_json::Map::new();
    if let Some(pairs) = header_pairs(r, "response-rewrite-add-header")? {
        let add: Vec<Value> = pairs
            .into_iter()
            .map(|(k, v)| Value::String(format!("{k}: {v}")))
            .collect();
        headers.insert("add".into(), Value::Array(add));
    }
    if let Some(pairs) = header_pairs(r, "response-rewrite-set-header")? {
        let set: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        headers.insert("set".into(), Value::Object(set));
    }
    if let Some(remove) = r.list("response-rewrite-remove-header")? {
        headers.insert("remove".into(), remove.into());
    }
    Ok(headers)
}

/// Method filters: allow wins over block, as in the reference.
fn method_filter(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let allow = methods(r, "http-allow-methods")?;
    let block = methods(r, "http-block-methods")?;
    let rule = match (allow, block) {
        (Some(allow), _) => json!(["request_method", "!", "in", allow]),
        (None, Some(block)) => json!(["request_method", "in", block]),
        (None, None) => return Ok(None),
    };
    Ok(Some((
        "fault-injection",
        json!({"abort": {"http_status": 405, "body": "Method Not Allowed\n", "vars": [[rule]]}}),
    )))
}

fn ip_restriction(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let allow_ips = cidrs(r, "allowlist-source-range")?;
    let block_ips = cidrs(r, "blocklist-source-range")?;
    match (allow_ips, block_ips) {
        (Some(_), Some(block)) => Err(error(
            "blocklist-source-range",
            &block.join(","),
            "conflicts with allowlist-source-range",
        )),
        (Some(allow), None) => Ok(Some(("ip-restriction", json!({"whitelist": allow})))),
        (None, Some(block)) => Ok(Some(("ip-restriction", json!({"blacklist": block})))),
        (None, None) => Ok(None),
    }
}

fn auth_type(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let Some(auth) = r.string("auth-type")? else {
        return Ok(None);
    };
    let plugin = match auth.as_str() {
        "basicAuth" => "basic-auth",
        "keyAuth" => "key-auth",
        _ => return Err(error("auth-type", &auth, "must be basicAuth or keyAuth")),
    };
    Ok(Some((plugin, json!({}))))
}

fn forward_auth(r: &Reader<'_>) -> Result<Option<(&'static str, Value)>, TranslateError> {
    let Some(uri) = r.string("auth-uri")? else {
        return Ok(None);
    };
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(error(
            "auth-uri",
            &uri,
            "must be an http:// or https:// URL",
        ));
    }
    let mut forward = serde_json::Map::new();
    forward.insert("uri".into(), uri.into());
    let verify = r.raw("auth-ssl-verify").is_none_or(|v| v != "false");
    forward.insert("ssl_verify".into(), verify.into());
    for (annotation, field) in [
        ("auth-request-headers", "request_headers"),
        ("auth-upstream-headers", "upstream_headers"),
        ("auth-client-headers", "client_headers"),
    ] {
        if let Some(list) = r.list(annotation)? {
            forward.insert(field.into(), list.into());
        }
    }
    Ok(Some(("forward-auth", Value::Object(forward))))
}

/// Every annotation name (after the prefix) this module reads.
pub const KNOWN: [&str; 38] = [
    "use-regex",
    "enable-websocket",
    "plugin-config-name",
    "svc-namespace",
    "upstream-scheme",
    "upstream-retries",
    "upstream-connect-timeout",
    "upstream-read-timeout",
    "upstream-send-timeout",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "enable-csrf",
    "csrf-key",
    "http-to-https",
    "http-redirect",
    "http-redirect-code",
    "rewrite-target",
    "rewrite-target-regex",
    "rewrite-target-regex-template",
    "enable-response-rewrite",
    "response-rewrite-status-code",
    "response-rewrite-body",
    "response-rewrite-body-base64",
    "response-rewrite-add-header",
    "response-rewrite-set-header",
    "response-rewrite-remove-header",
    "http-allow-methods",
    "http-block-methods",
    "allowlist-source-range",
    "blocklist-source-range",
    "auth-type",
    "auth-uri",
    "auth-ssl-verify",
    "auth-request-headers",
    "auth-upstream-headers",
    "auth-client-headers",
];
