//! ApisixUpstream settings applied to an APISIX upstream: load balancing,
//! scheme, retries, timeouts, health checks, upstream mTLS, host passing;
//! `portLevelSettings` for the upstream's Service port are laid over the
//! top-level settings (field by field, as the 2.x reference does).

use serde_json::{Map, Value, json};

use super::{TranslateError, tls};
use crate::api::UpstreamSettings;
use crate::api::upstream_types::{
    ActiveHealthCheck, HealthCheck, HealthCheckType, PassiveHealthCheck,
};
use crate::inputs::SecretKind;
use crate::model::{Dependency, ObjectKey, Snapshot, SourceKind, UnitDeps};

/// `5s`, `500ms`, `2m`, `1h` → seconds.
pub fn duration_seconds(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return None;
    };
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| *s > 0.0)
}

fn seconds(field: &str, text: &str) -> Result<f64, TranslateError> {
    duration_seconds(text)
        .ok_or_else(|| TranslateError::Invalid(format!("{field} {text:?} is not a duration")))
}

/// The top-level settings with the port's entry laid over them.
pub fn effective(settings: &crate::api::ApisixUpstreamSpec, port: i32) -> UpstreamSettings {
    let mut merged = settings.settings.clone();
    if let Some(level) = settings
        .port_level_settings
        .iter()
        .flatten()
        .find(|p| p.port == port)
    {
        let over = &level.settings;
        macro_rules! overlay {
            ($($field:ident),*) => { $( if over.$field.is_some() { merged.$field = over.$field.clone(); } )* };
        }
        overlay!(
            loadbalancer,
            scheme,
            retries,
            timeout,
            health_check,
            tls_secret,
            subsets,
            pass_host,
            upstream_host
        );
    }
    merged
}

/// Applies `settings` to the upstream object `upstream`.
pub fn apply(
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    settings: &UpstreamSettings,
    upstream: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if let Some(lb) = &settings.loadbalancer {
        upstream.insert(
            "type".into(),
            serde_json::to_value(lb.type_).expect("an enum serializes"),
        );
        if let Some(hash_on) = lb.hash_on {
            upstream.insert(
                "hash_on".into(),
                serde_json::to_value(hash_on).expect("an enum serializes"),
            );
        }
        if let Some(key) = &lb.key {
            upstream.insert("key".into(), key.clone().into());
        }
    }
    if let Some(scheme) = settings.scheme {
        upstream.insert(
            "scheme".into(),
            serde_json::to_value(scheme).expect("an enum serializes"),
        );
    }
    if let Some(retries) = settings.retries {
        upstream.insert("retries".into(), retries.into());
    }
    if let Some(timeout) = &settings.timeout {
        let part = |name: &str, value: &Option<String>| -> Result<f64, TranslateError> {
            value
                .as_deref()
                .map_or(Ok(60.0), |v| seconds(&format!("timeout.{name}"), v))
        };
        upstream.insert(
            "timeout".into(),
            json!({
                "connect": part("connect", &timeout.connect)?,
                "send": part("send", &timeout.send)?,
                "read": part("read", &timeout.read)?,
            }),
        );
    }
    if let Some(checks) = &settings.health_check {
        upstream.insert("checks".into(), health_checks(checks)?);
    }
    if let Some(secret) = &settings.tls_secret {
        let key = ObjectKey::new(&secret.namespace, &secret.name);
        deps.insert(Dependency::object(SecretKind::KIND, key.clone()));
        let (cert, private_key) = tls::key_pair(snapshot, &key)?;
        upstream.insert(
            "tls".into(),
            json!({"client_cert": cert, "client_key": private_key}),
        );
    }
    if let Some(pass_host) = settings.pass_host {
        let value = serde_json::to_value(pass_host).expect("an enum serializes");
        if value == "rewrite" && settings.upstream_host.is_none() {
            return Err(TranslateError::Invalid(
                "passHost rewrite needs upstreamHost".into(),
            ));
        }
        upstream.insert("pass_host".into(), value);
    }
    if let Some(host) = &settings.upstream_host {
        upstream.insert("upstream_host".into(), host.clone().into());
    }
    Ok(())
}

/// Checks an ApisixUpstream on its own (for its status): every setting,
/// top-level and per port, applies cleanly, and external nodes resolve.
pub fn validate(
    snapshot: &Snapshot,
    deps: &mut UnitDeps,
    spec: &crate::api::ApisixUpstreamSpec,
) -> Result<(), TranslateError> {
    apply(snapshot, deps, &spec.settings, &mut Map::new())?;
    for level in spec.port_level_settings.iter().flatten() {
        let merged = effective(spec, level.port);
        apply(snapshot, deps, &merged, &mut Map::new()).map_err(|e| {
            TranslateError::Invalid(format!("portLevelSettings port {}: {e}", level.port))
        })?;
    }
    Ok(())
}

fn check_type(value: Option<HealthCheckType>) -> Value {
    serde_json::to_value(value.unwrap_or(HealthCheckType::Http)).expect("an enum serializes")
}

fn health_checks(checks: &HealthCheck) -> Result<Value, TranslateError> {
    let mut out = Map::new();
    if let Some(active) = &checks.active {
        out.insert("active".into(), active_check(active)?);
    }
    if let Some(passive) = &checks.passive {
        out.insert("passive".into(), passive_check(passive));
    }
    Ok(Value::Object(out))
}

fn active_check(active: &ActiveHealthCheck) -> Result<Value, TranslateError> {
    let mut out = Map::new();
    out.insert("type".into(), check_type(active.type_));
    if let Some(timeout) = &active.timeout {
        out.insert(
            "timeout".into(),
            seconds("healthCheck.active.timeout", timeout)?.into(),
        );
    }
    if let Some(v) = active.concurrency {
        out.insert("concurrency".into(), v.into());
    }
    if let Some(v) = &active.host {
        out.insert("host".into(), v.clone().into());
    }
    if let Some(v) = active.port {
        out.insert("port".into(), v.into());
    }
    if let Some(v) = &active.http_path {
        out.insert("http_path".into(), v.clone().into());
    }
    out.insert(
        "https_verify_certificate".into(),
        active.strict_tls.unwrap_or(true).into(),
    );
    if let Some(v) = &active.request_headers {
        out.insert("req_headers".into(), v.clone().into());
    }
    if let Some(healthy) = &active.healthy {
        let mut h = thresholds(
            healthy.http_codes.as_ref(),
            &[("successes", healthy.successes)],
        );
        if let Some(v) = &healthy.interval {
            h.insert("interval".into(), interval(v)?.into());
        }
        out.insert("healthy".into(), Value::Object(h));
    }
    if let Some(unhealthy) = &active.unhealthy {
        let mut u = thresholds(
            unhealthy.http_codes.as_ref(),
            &[
                ("http_failures", unhealthy.http_failures),
                ("tcp_failures", unhealthy.tcp_failures),
                ("timeouts", unhealthy.timeouts),
            ],
        );
        if let Some(v) = &unhealthy.interval {
            u.insert("interval".into(), interval(v)?.into());
        }
        out.insert("unhealthy".into(), Value::Object(u));
    }
    Ok(Value::Object(out))
}

/// A healthy or unhealthy block of a health check (active or passive): the
/// status codes and whichever counters are set.
fn thresholds(
    http_codes: Option<&Vec<i32>>,
    counters: &[(&str, Option<i32>)],
) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(codes) = http_codes {
        out.insert("http_statuses".into(), codes.clone().into());
    }
    for (name, value) in counters {
        if let Some(v) = value {
            out.insert((*name).into(), (*v).into());
        }
    }
    out
}

/// Health-check intervals are whole seconds, at least 1.
fn interval(text: &str) -> Result<i64, TranslateError> {
    let secs = seconds("healthCheck interval", text)?;
    if secs < 1.0 {
        return Err(TranslateError::Invalid(format!(
            "healthCheck interval {text:?} is below 1s"
        )));
    }
    Ok(secs.round() as i64)
}

fn passive_check(passive: &PassiveHealthCheck) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), check_type(passive.type_));
    if let Some(healthy) = &passive.healthy {
        let h = thresholds(
            healthy.http_codes.as_ref(),
            &[("successes", healthy.successes)],
        );
        out.insert("healthy".into(), Value::Object(h));
    }
    if let Some(unhealthy) = &passive.unhealthy {
        let u = thresholds(
            unhealthy.http_codes.as_ref(),
            &[
                ("http_failures", unhealthy.http_failures),
                ("tcp_failures", unhealthy.tcp_failures),
                ("timeouts", unhealthy.timeouts),
            ],
        );
        out.insert("unhealthy".into(), Value::Object(u));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_seconds() {
        assert_eq!(duration_seconds("5s"), Some(5.0));
        assert_eq!(duration_seconds("500ms"), Some(0.5));
        assert_eq!(duration_seconds("2m"), Some(120.0));
        assert_eq!(duration_seconds("1h"), Some(3600.0));
        assert_eq!(duration_seconds("5"), None);
        assert_eq!(duration_seconds("0s"), None);
    }

    #[test]
    fn health_check_thresholds_keep_the_codes_and_the_set_counters() {
        let checks: HealthCheck = serde_json::from_value(json!({
            "active": {"unhealthy": {"httpCodes": [500, 503], "timeouts": 3, "interval": "1.4s"}},
            "passive": {
                "healthy": {"httpCodes": [200], "successes": 5},
                "unhealthy": {"httpFailures": 2, "tcpFailures": 1},
            },
        }))
        .unwrap();
        let out = health_checks(&checks).unwrap();
        assert_eq!(
            out["active"]["unhealthy"],
            json!({"http_statuses": [500, 503], "timeouts": 3, "interval": 1})
        );
        assert_eq!(
            out["passive"]["healthy"],
            json!({"http_statuses": [200], "successes": 5})
        );
        assert_eq!(
            out["passive"]["unhealthy"],
            json!({"http_failures": 2, "tcp_failures": 1})
        );
    }
}
