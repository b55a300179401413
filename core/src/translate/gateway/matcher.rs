//! A small model of how APISIX routes a request (its default
//! `radixtree_host_uri` router), for checking translated routes without a
//! data plane:
//!
//! 1. hosts: routes listing the request's host exactly are tried first,
//!    then routes with a wildcard host that matches, the longest suffix
//!    first, then routes without hosts;
//! 2. within those, a route whose uri equals the path before any prefix
//!    uri (`/p/*`, which matches `/p/` and below; `/*` matches all),
//!    longer prefixes first;
//! 3. routes on the same host and uri by descending `priority`; the first
//!    whose `methods` and `vars` hold wins.
//!
//! Then the route's plugins decide the answer: `fault-injection` aborts,
//! `redirect` answers with a Location, `traffic-split` picks among its
//! weighted upstreams, otherwise its `upstream_id`.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// A request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub scheme: &'static str,
    pub host: String,
    pub path: String,
    pub method: &'static str,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
}

impl Request {
    pub fn get(host: &str, path_and_query: &str) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            scheme: "http",
            host: host.to_string(),
            path: path.to_string(),
            method: "GET",
            headers: BTreeMap::new(),
            query: query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .insert(name.to_ascii_lowercase(), value.to_string());
        self
    }

    pub fn method(mut self, method: &'static str) -> Request {
        self.method = method;
        self
    }

    pub fn https(mut self) -> Request {
        self.scheme = "https";
        self
    }
}

/// Which route answered, and how.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No route matched: APISIX answers 404.
    NoRoute,
    /// Forwarded to upstreams (by id), with their weights.
    Upstreams(Vec<(String, i64)>),
    /// Answered by the route itself.
    Status(i64),
    Redirect {
        code: i64,
        location: String,
    },
}

/// The route APISIX picks for `request` among `routes` (route values).
pub fn pick<'a>(routes: &'a [Value], request: &Request) -> Option<&'a Value> {
    // APISIX matches the host without its port.
    let host = request
        .host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let hosts_of = |route: &Value| -> Vec<String> {
        route["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let exact: Vec<&Value> = routes
        .iter()
        .filter(|r| hosts_of(r).contains(&host))
        .collect();
    let mut wildcards: BTreeMap<std::cmp::Reverse<usize>, Vec<&Value>> = BTreeMap::new();
    for route in routes {
        let best = hosts_of(route)
            .into_iter()
            .filter_map(|h| h.strip_prefix('*').map(str::to_string))
            .filter(|suffix| host.ends_with(suffix.as_str()) && host.len() > suffix.len())
            .map(|suffix| suffix.len())
            .max();
        if let Some(len) = best {
            wildcards
                .entry(std::cmp::Reverse(len))
                .or_default()
                .push(route);
        }
    }
    let hostless: Vec<&Value> = routes.iter().filter(|r| hosts_of(r).is_empty()).collect();
    std::iter::once(exact)
        .chain(wildcards.into_values())
        .chain(std::iter::once(hostless))
        .find_map(|group| pick_by_uri(&group, request))
}

fn pick_by_uri<'a>(routes: &[&'a Value], request: &Request) -> Option<&'a Value> {
    let uris = |route: &Value| -> Vec<String> {
        route["uris"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    // Exact uris first, then prefixes by length.
    let mut candidates: Vec<(u8, usize, &Value)> = Vec::new();
    for route in routes {
        for uri in uris(route) {
            match uri.strip_suffix('*') {
                Some(prefix) if request.path.starts_with(prefix) => {
                    candidates.push((1, prefix.len(), route))
                }
                None if uri == request.path => candidates.push((2, uri.len(), route)),
                _ => {}
            }
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse((c.0, c.1, priority(c.2))));
    candidates
        .into_iter()
        .map(|(_, _, r)| r)
        .find(|route| filters_hold(route, request))
}

fn priority(route: &Value) -> i64 {
    route["priority"].as_i64().unwrap_or(0)
}

fn filters_hold(route: &Value, request: &Request) -> bool {
    if let Some(methods) = route["methods"].as_array()
        && !methods.iter().any(|m| m.as_str() == Some(request.method))
    {
        return false;
    }
    route["vars"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|var| var_holds(var, request))
}

fn var_holds(var: &Value, request: &Request) -> bool {
    let (name, op, expected) = (
        var[0].as_str().unwrap(),
        var[1].as_str().unwrap(),
        var[2].as_str().unwrap(),
    );
    let actual = if name == "uri" {
        Some(request.path.clone())
    } else if name == "scheme" {
        Some(request.scheme.to_string())
    } else if let Some(header) = name.strip_prefix("http_") {
        request.headers.get(&header.replace('_', "-")).cloned()
    } else if let Some(arg) = name.strip_prefix("arg_") {
        request.query.get(arg).cloned()
    } else {
        panic!("the matcher does not know var {name}")
    };
    let Some(actual) = actual else { return false };
    match op {
        "==" => actual == expected,
        "~~" => Regex::new(expected).unwrap().is_match(&actual),
        other => panic!("the matcher does not know operator {other}"),
    }
}

/// What APISIX does with `request`.
pub fn outcome(routes: &[Value], request: &Request) -> Outcome {
    let Some(route) = pick(routes, request) else {
        return Outcome::NoRoute;
    };
    let plugins = &route["plugins"];
    if let Some(abort) = plugins.get("fault-injection") {
        return Outcome::Status(abort["abort"]["http_status"].as_i64().unwrap());
    }
    if let Some(redirect) = plugins.get("redirect") {
        return Outcome::Redirect {
            code: redirect["ret_code"].as_i64().unwrap_or(302),
            location: location(redirect, plugins, request),
        };
    }
    let default = route["upstream_id"]
        .as_str()
        .expect("a forwarding route names its upstream")
        .to_string();
    match plugins.get("traffic-split") {
        None => Outcome::Upstreams(vec![(default, 1)]),
        Some(split) => Outcome::Upstreams(
            split["rules"][0]["weighted_upstreams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    (
                        w["upstream_id"].as_str().unwrap_or(&default).to_string(),
                        w["weight"].as_i64().unwrap(),
                    )
                })
                .collect(),
        ),
    }
}

/// The Location of a redirect, as APISIX builds it: variables expanded in
/// `uri` (`$upstream_uri` is the path `proxy-rewrite` computed, with the
/// query), none in `regex_uri`'s replacement (`ngx.re.sub` knows only
/// capture groups; anything else there is an error).
fn location(redirect: &Value, plugins: &Value, request: &Request) -> String {
    let query = request
        .query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let with_query = |path: &str| match query.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{query}"),
    };
    let upstream_uri = with_query(&rewritten_path(&plugins["proxy-rewrite"], &request.path));
    let expand = |template: &str| {
        template
            .replace("$request_uri", &with_query(&request.path))
            .replace("$upstream_uri", &upstream_uri)
            .replace("$scheme", request.scheme)
            .replace("$host", &request.host)
    };
    let mut target = match (redirect["uri"].as_str(), redirect["regex_uri"].as_array()) {
        (Some(uri), _) => expand(uri),
        (None, Some(pair)) => {
            let replacement = pair[1].as_str().unwrap();
            let variable = Regex::new(r"\$[A-Za-z_]").unwrap();
            assert!(
                !variable.is_match(replacement),
                "APISIX refuses {replacement:?}"
            );
            let re = Regex::new(pair[0].as_str().unwrap()).unwrap();
            re.replace(&request.path, replacement.replace("$1", "${1}").as_str())
                .into_owned()
        }
        _ => panic!("a redirect without uri"),
    };
    if redirect["append_query_string"].as_bool() == Some(true) && !query.is_empty() {
        target = format!("{target}?{query}");
    }
    target
}

/// The path `proxy-rewrite` sends upstream: its `uri`, or the first of its
/// `regex_uri` pairs that matches, else the request's.
fn rewritten_path(rewrite: &Value, path: &str) -> String {
    if let Some(uri) = rewrite["uri"].as_str() {
        return uri.to_string();
    }
    let pairs = rewrite["regex_uri"].as_array().cloned().unwrap_or_default();
    for pair in pairs.chunks(2) {
        let re = Regex::new(pair[0].as_str().unwrap()).unwrap();
        if re.is_match(path) {
            let replacement = pair[1].as_str().unwrap().replace("$1", "${1}");
            return re.replace(path, replacement.as_str()).into_owned();
        }
    }
    path.to_string()
}
