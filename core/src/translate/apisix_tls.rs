//! ApisixTls → an APISIX ssl: SNIs, certificate and key from a Secret, and
//! the client CA for downstream mTLS.

use serde_json::{Value, json};

use super::{TranslateError, TranslateInput, Translation, UnitObjects, labels, tls};
use crate::api::ApisixStatus;
use crate::api::ApisixTls;
use crate::apisix::{ApisixDir, IdKind, object_id};
use crate::inputs::SecretKind;
use crate::model::{
    Dependency, ObjectKey, Objects, SourceKind, StatusStyle, UnitDeps, UnitKind, WatchWhen,
};

pub const KIND: &str = "ApisixTls";

pub struct ApisixTlsKind;

impl SourceKind for ApisixTlsKind {
    type Object = ApisixTls;
    type Store = Objects<ApisixTls>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixTlsKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;
    const SNI_FIELD: &'static str = "spec.hosts";

    fn translate(input: TranslateInput<'_>, tls: &ApisixTls) -> Translation {
        translate(input, tls)
    }

    fn ingress_class_name(tls: &ApisixTls) -> Option<&str> {
        tls.spec.ingress_class_name.as_deref()
    }

    fn current_status(tls: &ApisixTls) -> Option<&ApisixStatus> {
        tls.status.as_ref()
    }
}

pub fn translate(input: TranslateInput<'_>, object: &ApisixTls) -> Translation {
    let mut deps = UnitDeps::new();
    let result = build(input, object, &mut deps);
    Translation { result, deps }
}

fn build(
    input: TranslateInput<'_>,
    object: &ApisixTls,
    deps: &mut UnitDeps,
) -> Result<UnitObjects, TranslateError> {
    let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let spec = &object.spec;
    let secret = ObjectKey::new(&spec.secret.namespace, &spec.secret.name);
    deps.insert(Dependency::object(SecretKind::KIND, secret.clone()));
    let (cert, mut key) =
        tls::key_pair(input.snapshot, &secret).map_err(|error| error.at("spec.secret"))?;
    if let Some(keyring) = &input.config.keyring {
        key = keyring.encrypt(&key);
    }
    let id = object_id(
        &input.config.ownership,
        IdKind::Ssl,
        &format!("{KIND}/{namespace}/{name}"),
    );
    let mut value = tls::ssl_value(
        cert,
        key,
        &spec.hosts,
        labels(input.config, KIND, namespace, name, None, &mut Vec::new()),
    );
    value["id"] = id.clone().into();
    if let Some(client) = &spec.client {
        let ca_key = ObjectKey::new(&client.ca_secret.namespace, &client.ca_secret.name);
        deps.insert(Dependency::object(SecretKind::KIND, ca_key.clone()));
        let ca = tls::ca_certificate(input.snapshot, &ca_key)
            .map_err(|error| error.at("spec.client.caSecret"))?;
        let mut settings = json!({"ca": ca});
        if let Some(depth) = client.depth {
            settings["depth"] = depth.into();
        }
        if let Some(skip) = &client.skip_mtls_uri_regex {
            for (index, pattern) in skip.iter().enumerate() {
                regex::Regex::new(pattern).map_err(|e| {
                    TranslateError::Invalid(format!("client.skip_mtls_uri_regex {pattern:?} is not a valid regular expression: {e}"))
                    .at(format!("spec.client.skip_mtls_uri_regex[{index}]"))
                })?;
            }
            settings["skip_mtls_uri_regex"] = Value::from(skip.clone());
        }
        value["client"] = settings;
    }
    let mut out = UnitObjects::default();
    out.add(input.config, ApisixDir::Ssls, &id, value)?;
    Ok(out)
}
