//! What translation takes and gives: its settings, its inputs, the APISIX
//! objects of one unit, and why a unit could not be translated.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::decode::DecodeError;
use super::{Snapshot, UnitDeps};
use crate::apisix::{ApisixDir, ApisixSchemas, CanonicalValue, EtcdKey, Keyring, Ownership};

/// Settings that shape translation.
#[derive(Debug, Clone)]
pub struct TranslateConfig {
    /// The APISIX prefix, e.g. `/apisix`.
    pub prefix: String,
    pub ownership: Ownership,
    /// IngressClasses whose `spec.controller` equals this are ours.
    pub controller_name: String,
    /// The class name accepted in the legacy `kubernetes.io/ingress.class`
    /// annotation even without an IngressClass object.
    pub ingress_class: String,
    /// When set, secret fields (ssl keys, plugin `encrypt_fields`) are
    /// written encrypted as APISIX's data encryption expects.
    pub keyring: Option<Keyring>,
    /// APISIX's schemas: when set, every object and plugin configuration is
    /// checked as the data plane would, and plugins it does not load are
    /// errors. Without it the data plane's silent rejection is the only check.
    pub schemas: Option<Arc<ApisixSchemas>>,
    /// Copy Ingresses' labels into the APISIX objects made from them, as the
    /// CRs' always are (`--copy-ingress-labels`).
    pub copy_ingress_labels: bool,
}

impl TranslateConfig {
    pub const DEFAULT_CONTROLLER_NAME: &'static str = "apisix.apache.org/apisix-operator";
    pub const DEFAULT_INGRESS_CLASS: &'static str = "apisix";
}

/// Everything a translation reads.
#[derive(Clone, Copy)]
pub struct TranslateInput<'a> {
    pub config: &'a TranslateConfig,
    pub snapshot: &'a Snapshot,
}

/// The APISIX objects of one unit, and the keys they refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitObjects {
    pub objects: BTreeMap<EtcdKey, CanonicalValue>,
    /// Keys its objects refer to (a route's upstream and plugin config):
    /// each must be desired, by this unit or another, or the unit fails.
    pub references: Vec<EtcdKey>,
    /// What was left out, not failing the unit (a label APISIX would
    /// refuse): reported as Warning Events.
    pub warnings: Vec<String>,
}

impl UnitObjects {
    /// Adds one object, checked against APISIX's schema of its directory
    /// when schemas are configured: a value APISIX would refuse is never
    /// written. Its references (`upstream_id`, `plugin_config_id`) are
    /// recorded.
    pub fn add(
        &mut self,
        config: &TranslateConfig,
        dir: ApisixDir,
        id: &str,
        value: Value,
    ) -> Result<(), TranslateError> {
        let key = EtcdKey::new(&config.prefix, dir, id)
            .map_err(|e| TranslateError::Internal(e.to_string()))?;
        if let Some(schemas) = &config.schemas {
            schemas.check_object(dir, id, &value)?;
        }
        for (field, referred) in [
            ("upstream_id", ApisixDir::Upstreams),
            ("plugin_config_id", ApisixDir::PluginConfigs),
        ] {
            if let Some(Value::String(target)) = value.get(field) {
                let reference = EtcdKey::new(&config.prefix, referred, target)
                    .map_err(|e| TranslateError::Internal(e.to_string()))?;
                self.references.push(reference);
            }
        }
        let value = CanonicalValue::from_json(value)
            .map_err(|e| TranslateError::Internal(e.to_string()))?;
        self.objects.insert(key, value);
        Ok(())
    }
}

/// The result of translating one unit: its objects or why it failed, and
/// what it read (recorded even on failure, so fixing the input retries it).
#[derive(Debug, Clone)]
pub struct Translation {
    pub result: Result<UnitObjects, TranslateError>,
    pub deps: UnitDeps,
}

impl Translation {
    /// No objects (the unit is not served), having read `deps` to decide so.
    pub fn nothing(deps: UnitDeps) -> Translation {
        Translation {
            result: Ok(UnitObjects::default()),
            deps,
        }
    }
}

/// Why a unit could not be translated. The message is what users see (in
/// Events, status conditions and logs), so it names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("annotation {annotation}={value:?}: {reason}")]
    Annotation {
        annotation: String,
        value: String,
        reason: String,
    },
    #[error("backend service {service}: {reason}")]
    Backend { service: String, reason: String },
    #[error("tls secret {secret}: {reason}")]
    Tls { secret: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Plugin(#[from] crate::apisix::PluginError),
    #[error("{0}")]
    Object(#[from] crate::apisix::ObjectError),
    /// An object refers to one nothing produces (a plugin config that
    /// failed, say).
    #[error("{what} {key} refers to {missing}, which is not written")]
    Reference {
        what: &'static str,
        key: String,
        missing: String,
    },
    /// The stored object does not decode into this operator's types.
    #[error("the object does not decode: {0}")]
    Decode(DecodeError),
    #[error("internal error: {0}")]
    Internal(String),
}
