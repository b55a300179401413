//! A `kubernetes.io/tls` Secret → an APISIX ssl object.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::TranslateError;
use crate::inputs::SecretKind;
use crate::model::{ObjectKey, Snapshot, SourceKind};

fn tls_error(secret: &ObjectKey, reason: impl Into<String>) -> TranslateError {
    TranslateError::Tls {
        secret: secret.to_string(),
        reason: reason.into(),
    }
}

fn missing_secret(secret: &ObjectKey) -> TranslateError {
    TranslateError::missing(
        SecretKind::KIND,
        secret,
        tls_error(secret, "not found").to_string(),
    )
}

/// The certificate chain and key of a Secret (`tls.crt`/`tls.key`, or the
/// reference's `cert`/`key`), checked to be PEM of the right kinds.
pub fn key_pair(snapshot: &Snapshot, key: &ObjectKey) -> Result<(String, String), TranslateError> {
    let secret = snapshot
        .get::<SecretKind>(key)
        .ok_or_else(|| missing_secret(key))?;
    let (cert, private) = match (field(secret, "tls.crt"), field(secret, "tls.key")) {
        (Some(cert), Some(private)) => (cert, private),
        _ => match (field(secret, "cert"), field(secret, "key")) {
            (Some(cert), Some(private)) => (cert, private),
            _ => return Err(tls_error(key, "needs tls.crt and tls.key")),
        },
    };
    if !has_pem_block(&cert, |label| label == "CERTIFICATE") {
        return Err(tls_error(key, "tls.crt holds no PEM CERTIFICATE"));
    }
    if !has_pem_block(&private, |label| label.ends_with("PRIVATE KEY")) {
        return Err(tls_error(key, "tls.key holds no PEM PRIVATE KEY"));
    }
    Ok((cert, private))
}

fn field(secret: &Secret, name: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(name)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(name))
        .cloned()
}

/// True when `text` has a well-formed PEM block whose label passes `label_ok`
/// and whose body is valid base64.
fn has_pem_block(text: &str, label_ok: impl Fn(&str) -> bool) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            return false;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            return false;
        };
        let body: String = body_start[..body_end].split_whitespace().collect();
        if label_ok(label)
            && !body.is_empty()
            && base64::engine::general_purpose::STANDARD
                .decode(&body)
                .is_ok()
        {
            return true;
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    false
}

/// A CA certificate from a Secret: `ca.crt`, else `tls.crt`, else `cert`.
pub fn ca_certificate(snapshot: &Snapshot, key: &ObjectKey) -> Result<String, TranslateError> {
    let secret = snapshot
        .get::<SecretKind>(key)
        .ok_or_else(|| missing_secret(key))?;
    let ca = ["ca.crt", "tls.crt", "cert"]
        .iter()
        .find_map(|name| field(secret, name))
        .ok_or_else(|| tls_error(key, "needs ca.crt (or tls.crt, or cert)"))?;
    if !has_pem_block(&ca, |label| label == "CERTIFICATE") {
        return Err(tls_error(key, "holds no PEM CERTIFICATE for the CA"));
    }
    Ok(ca)
}

/// The DNS names of a PEM certificate (its first): the subject alternative
/// names, else the subject's common name; only those APISIX accepts as an
/// SNI (`*.example.com` or a plain name; not a bare `*`).
pub fn certificate_names(cert_pem: &str) -> Result<Vec<String>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    let sni = regex::Regex::new(r"^\*?[0-9a-zA-Z-._]+$").expect("a valid pattern");
    names.retain(|name| sni.is_match(name) && name != "*");
    names.sort();
    names.dedup();
    Ok(names)
}

/// The ssl object value (without id).
pub fn ssl_value(cert: String, key: String, snis: &[String], labels: Value) -> Value {
    json!({"cert": cert, "key": key, "snis": snis, "labels": labels})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_pem_blocks() {
        let cert = "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n";
        assert!(has_pem_block(cert, |l| l == "CERTIFICATE"));
        assert!(!has_pem_block(cert, |l| l.ends_with("PRIVATE KEY")));
        assert!(!has_pem_block(
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
            |_| true
        ));
        assert!(!has_pem_block("not pem", |_| true));
        let key = "-----BEGIN EC PRIVATE KEY-----\nTUlJQg==\n-----END EC PRIVATE KEY-----";
        assert!(has_pem_block(key, |l| l.ends_with("PRIVATE KEY")));
    }
}
