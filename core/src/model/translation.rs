//! What translation takes and gives: its settings, its inputs, the APISIX
//! objects of one unit, and why a unit could not be translated.

use std::collections::BTreeMap;
use std::fmt;
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
    /// The Gateway listener ports the data plane serves, per protocol.
    pub gateway_ports: crate::translate::gateway::ServedPorts,
}

impl TranslateConfig {
    pub const DEFAULT_CONTROLLER_NAME: &'static str = "apisix.apache.org/apisix-operator";
    pub const DEFAULT_INGRESS_CLASS: &'static str = "apisix";

    /// The settings `run` starts from, for `prefix` and `ownership`: the
    /// default controller and class, no keyring, no schemas, Ingress labels
    /// not copied.
    pub fn defaults(prefix: &str, ownership: Ownership) -> TranslateConfig {
        TranslateConfig {
            prefix: prefix.to_string(),
            ownership,
            controller_name: Self::DEFAULT_CONTROLLER_NAME.into(),
            ingress_class: Self::DEFAULT_INGRESS_CLASS.into(),
            keyring: None,
            schemas: None,
            copy_ingress_labels: false,
            gateway_ports: Default::default(),
        }
    }
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
    /// The unit's status body, for kinds that compute it in translation
    /// (the Gateway API's): conditions without `lastTransitionTime`, which
    /// the status writer stamps.
    pub status: Option<Value>,
    /// The Gateway listeners it attached to (a route's), which count it in
    /// their `attachedRoutes`.
    pub attached_to: Vec<ListenerRef>,
}

/// One listener of one Gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenerRef {
    pub gateway: super::ObjectKey,
    pub listener: String,
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
    /// An object the unit reads is not in the cache (it may be created
    /// next): `message` says which, and where it is named.
    #[error("{message}")]
    Missing {
        kind: &'static str,
        key: String,
        message: String,
    },
    /// `error`, found at `field` of the source object (a path such as
    /// `spec.http[0].plugins[1]`).
    #[error("{field}: {error}")]
    At {
        field: String,
        error: Box<TranslateError>,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl TranslateError {
    /// An object of `kind` named `key` is not in the cache.
    pub fn missing(kind: &'static str, key: impl fmt::Display, message: String) -> TranslateError {
        TranslateError::Missing {
            kind,
            key: key.to_string(),
            message,
        }
    }

    /// This error, found at `field` (a path relative to the object, or to
    /// the field an enclosing [`TranslateError::at`] adds).
    pub fn at(self, field: impl fmt::Display) -> TranslateError {
        match self {
            TranslateError::At {
                field: inner,
                error,
            } => TranslateError::At {
                field: join_field(&field.to_string(), &inner),
                error,
            },
            error => TranslateError::At {
                field: field.to_string(),
                error: Box::new(error),
            },
        }
    }

    /// The field of the source object the error is about, when known.
    pub fn field(&self) -> Option<String> {
        match self {
            TranslateError::At { field, error } => Some(match error.field() {
                Some(inner) => join_field(field, &inner),
                None => field.clone(),
            }),
            TranslateError::Annotation { annotation, .. } => {
                Some(format!("metadata.annotations[{annotation}]"))
            }
            TranslateError::Decode(error) => Some(error.path.clone()),
            _ => None,
        }
    }

    /// The error without the field it was found at.
    pub fn cause(&self) -> &TranslateError {
        match self {
            TranslateError::At { error, .. } => error.cause(),
            error => error,
        }
    }

    /// The kind and key of the missing object, when that is all that is
    /// wrong (admission warns instead of refusing: it may be created next).
    pub fn missing_object(&self) -> Option<(&'static str, &str)> {
        match self.cause() {
            TranslateError::Missing { kind, key, .. } => Some((kind, key.as_str())),
            _ => None,
        }
    }
}

/// `outer` then `inner`: `spec.http[0]` + `plugins[1]` is
/// `spec.http[0].plugins[1]`; an index (`[1]`) joins without a dot.
fn join_field(outer: &str, inner: &str) -> String {
    if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}
