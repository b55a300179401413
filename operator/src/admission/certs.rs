//! The webhook's serving certificate when the operator manages it: a CA and
//! a serving certificate signed by it, kept in one Secret. Which material
//! to issue and when to renew it is decided here from the certificates'
//! own validity and names and the time given; the Secret and the
//! ValidatingWebhookConfiguration are read and written by `cert_task`.

use std::collections::BTreeSet;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use x509_parser::extensions::GeneralName;

/// How long the CA is valid: it is the trust anchor the API server holds,
/// replaced rarely (and then served alongside the old one).
const CA_LIFETIME_DAYS: i64 = 3650;
/// Renew the CA when this little of it is left.
const CA_RENEW_BEFORE_DAYS: i64 = 365;
/// How long a serving certificate is valid.
const SERVING_LIFETIME_DAYS: i64 = 90;
/// Renew the serving certificate when this little of it is left (a third).
const SERVING_RENEW_BEFORE_DAYS: i64 = 30;
const DAY: i64 = 86_400;

/// The keys of the Secret.
pub const CA_BUNDLE_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the Secret has no {0}")]
    MissingKey(&'static str),
    #[error("{what} is not a PEM certificate: {reason}")]
    Parse { what: &'static str, reason: String },
}

/// What the Secret holds: the CA bundle the API server trusts (the current
/// CA first, then a retiring one), the CA's key, and the serving pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCerts {
    pub ca_bundle: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

/// Why the material must be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The CA expires within [`CA_RENEW_BEFORE_DAYS`]: a new CA, and the old
    /// one stays in the bundle until it expires.
    Ca,
    /// The serving certificate expires soon or names other hosts.
    Serving,
}

impl WebhookCerts {
    /// A new CA and a serving certificate for `hosts`, valid from `now`
    /// (unix seconds).
    pub fn issue(hosts: &[String], now: i64) -> Result<WebhookCerts, CertError> {
        let (ca_pem, ca_key) = new_ca(now)?;
        let (cert, key) = serving_cert(&ca_pem, &ca_key, hosts, now)?;
        Ok(WebhookCerts {
            ca_bundle: ca_pem,
            ca_key,
            cert,
            key,
        })
    }

    /// What must be renewed at `now` for `hosts`, if anything.
    pub fn renewal(&self, hosts: &[String], now: i64) -> Result<Option<Renewal>, CertError> {
        let ca = first_pem(&self.ca_bundle, "the CA bundle")?;
        if not_after(&ca, "the CA")? - now < CA_RENEW_BEFORE_DAYS * DAY {
            return Ok(Some(Renewal::Ca));
        }
        let expires = not_after(&self.cert, "the serving certificate")?;
        let wanted: BTreeSet<&str> = hosts.iter().map(String::as_str).collect();
        let named = names(&self.cert)?;
        let named: BTreeSet<&str> = named.iter().map(String::as_str).collect();
        if expires - now < SERVING_RENEW_BEFORE_DAYS * DAY || named != wanted {
            return Ok(Some(Renewal::Serving));
        }
        Ok(None)
    }

    /// The material after `renewal` at `now`.
    pub fn renewed(
        &self,
        renewal: Renewal,
        hosts: &[String],
        now: i64,
    ) -> Result<WebhookCerts, CertError> {
        match renewal {
            Renewal::Serving => {
                let ca = first_pem(&self.ca_bundle, "the CA bundle")?;
                let (cert, key) = serving_cert(&ca, &self.ca_key, hosts, now)?;
                Ok(WebhookCerts {
                    cert,
                    key,
                    ..self.clone()
                })
            }
            Renewal::Ca => {
                let mut fresh = WebhookCerts::issue(hosts, now)?;
                // Serving certificates of the old CA are still in use until
                // every replica reloads: keep trusting it while it is valid.
                let old = first_pem(&self.ca_bundle, "the CA bundle")?;
                if not_after(&old, "the CA")? > now {
                    fresh.ca_bundle.push_str(&old);
                }
                Ok(fresh)
            }
        }
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "apisix-operator");
    name
}

fn validity(params: &mut CertificateParams, now: i64, days: i64) -> Result<(), CertError> {
    let at = |seconds: i64| {
        time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| CertError::Parse {
            what: "a validity time",
            reason: e.to_string(),
        })
    };
    // An hour of slack for clocks that lag behind this one.
    params.not_before = at(now - 3600)?;
    params.not_after = at(now + days * DAY)?;
    Ok(())
}

fn new_ca(now: i64) -> Result<(String, String), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = distinguished_name(&format!("apisix-operator webhook CA {now}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, now, CA_LIFETIME_DAYS)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn serving_cert(
    ca_pem: &str,
    ca_key: &str,
    hosts: &[String],
    now: i64,
) -> Result<(String, String), CertError> {
    let ca_key = KeyPair::from_pem(ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name = distinguished_name("apisix-operator webhook");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, now, SERVING_LIFETIME_DAYS)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The first PEM certificate block of `bundle`.
fn first_pem(bundle: &str, what: &'static str) -> Result<String, CertError> {
    const END: &str = "-----END CERTIFICATE-----";
    let end = bundle.find(END).ok_or(CertError::Parse {
        what,
        reason: "no certificate".into(),
    })?;
    Ok(format!("{}\n", &bundle[..end + END.len()]))
}

fn parsed<T>(
    pem: &str,
    what: &'static str,
    read: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> Result<T, String>,
) -> Result<T, CertError> {
    let error = |reason: String| CertError::Parse { what, reason };
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| error(e.to_string()))?;
    let cert = block.parse_x509().map_err(|e| error(e.to_string()))?;
    read(&cert).map_err(error)
}

/// When a certificate expires (unix seconds).
fn not_after(pem: &str, what: &'static str) -> Result<i64, CertError> {
    parsed(pem, what, |cert| Ok(cert.validity().not_after.timestamp()))
}

/// The DNS names and IP addresses a certificate is for.
fn names(pem: &str) -> Result<Vec<String>, CertError> {
    parsed(pem, "the serving certificate", |cert| {
        let san = cert.subject_alternative_name().map_err(|e| e.to_string())?;
        Ok(san
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some(dns.to_string()),
                        GeneralName::IPAddress(bytes) => ip_text(bytes),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn hosts() -> Vec<String> {
        vec!["webhook.ns.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn issued_material_is_fresh_and_names_the_hosts() {
        let certs = WebhookCerts::issue(&hosts(), NOW).unwrap();
        assert_eq!(certs.renewal(&hosts(), NOW).unwrap(), None);
        let mut named = names(&certs.cert).unwrap();
        named.sort();
        assert_eq!(named, vec!["127.0.0.1", "webhook.ns.svc"]);
        assert_eq!(
            not_after(&certs.cert, "cert").unwrap(),
            NOW + SERVING_LIFETIME_DAYS * DAY
        );
    }

    #[test]
    fn serving_certificates_renew_before_expiry_or_when_hosts_change() {
        let certs = WebhookCerts::issue(&hosts(), NOW).unwrap();
        let almost = NOW + (SERVING_LIFETIME_DAYS - SERVING_RENEW_BEFORE_DAYS) * DAY;
        assert_eq!(certs.renewal(&hosts(), almost - DAY).unwrap(), None);
        assert_eq!(
            certs.renewal(&hosts(), almost + 1).unwrap(),
            Some(Renewal::Serving)
        );
        let other = vec!["other.ns.svc".to_string()];
        assert_eq!(certs.renewal(&other, NOW).unwrap(), Some(Renewal::Serving));
        let renewed = certs.renewed(Renewal::Serving, &hosts(), almost).unwrap();
        assert_eq!(renewed.ca_bundle, certs.ca_bundle, "same CA");
        assert_eq!(renewed.renewal(&hosts(), almost + 1).unwrap(), None);
    }

    #[test]
    fn a_ca_near_expiry_is_replaced_and_the_old_one_still_trusted() {
        let certs = WebhookCerts::issue(&hosts(), NOW).unwrap();
        let late = NOW + (CA_LIFETIME_DAYS - CA_RENEW_BEFORE_DAYS) * DAY + 1;
        assert_eq!(certs.renewal(&hosts(), late).unwrap(), Some(Renewal::Ca));
        let renewed = certs.renewed(Renewal::Ca, &hosts(), late).unwrap();
        assert_ne!(renewed.ca_key, certs.ca_key);
        assert!(renewed.ca_bundle.ends_with(&certs.ca_bundle), "old CA kept");
        assert_eq!(renewed.ca_bundle.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(renewed.renewal(&hosts(), late).unwrap(), None);
    }

    #[test]
    fn the_serving_certificate_verifies_against_the_bundle() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let certs = WebhookCerts::issue(&hosts(), NOW).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(certs.ca_bundle.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from_pem_slice(certs.cert.as_bytes()).unwrap();
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from("webhook.ns.svc").unwrap(),
                &[],
                at,
            )
            .unwrap();
    }
}
