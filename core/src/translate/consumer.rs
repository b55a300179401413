//! ApisixConsumer → an APISIX consumer (key = username) with one
//! authentication plugin, credentials inline or from a Secret, plus any
//! extra plugins.
//!
//! The username is `ao_<cluster>_<namespace>_<name>` with `.` written as `_`
//! (namespaces and names never contain `_`, so two consumers never share a
//! username, unlike the reference's `-` → `_` mapping); when that exceeds
//! APISIX's 64 characters it is `ao_<cluster>_c<hash>` instead.

use serde_json::{Map, Value, json};

use super::plugins::{plugins_object, secret_strings};
use super::{TranslateError, TranslateInput, Translation, UnitObjects, labels};
use crate::api::ApisixStatus;
use crate::api::consumer_secret::LocalSecretReference;
use crate::api::{ApisixConsumer, AuthParameter};
use crate::apisix::{ApisixDir, IdKind, PluginUse, is_valid_id, object_id};
use crate::inputs::SecretKind;
use crate::model::{
    Dependency, ObjectKey, Objects, SourceKind, StatusStyle, UnitDeps, UnitKind, WatchWhen,
};

pub const KIND: &str = "ApisixConsumer";

pub struct ApisixConsumerKind;

impl SourceKind for ApisixConsumerKind {
    type Object = ApisixConsumer;
    type Store = Objects<ApisixConsumer>;
    const KIND: &'static str = KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixConsumerKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    fn translate(input: TranslateInput<'_>, consumer: &ApisixConsumer) -> Translation {
        translate(input, consumer)
    }

    fn ingress_class_name(consumer: &ApisixConsumer) -> Option<&str> {
        consumer.spec.ingress_class_name.as_deref()
    }

    fn current_status(consumer: &ApisixConsumer) -> Option<&ApisixStatus> {
        consumer.status.as_ref()
    }
}

pub fn username(config: &super::TranslateConfig, namespace: &str, name: &str) -> String {
    let readable = format!(
        "{}{namespace}_{}",
        config.ownership.id_prefix(),
        name.replace('.', "_")
    );
    if is_valid_id(&readable) {
        readable
    } else {
        object_id(
            &config.ownership,
            IdKind::Consumer,
            &format!("{KIND}/{namespace}/{name}"),
        )
    }
}

pub fn translate(input: TranslateInput<'_>, object: &ApisixConsumer) -> Translation {
    let mut deps = UnitDeps::new();
    let result = build(input, object, &mut deps);
    Translation { result, deps }
}

/// The authentication method an ApisixConsumer chose: the APISIX plugin,
/// the CRD field name (for messages), the inline value as JSON, and the
/// Secret reference.
struct ChosenMethod<'a> {
    plugin: &'static str,
    field: &'static str,
    value: Option<Value>,
    secret: Option<&'a LocalSecretReference>,
}

fn chosen_method(auth: &AuthParameter) -> Result<ChosenMethod<'_>, TranslateError> {
    fn method<'a, T: serde::Serialize>(
        plugin: &'static str,
        field: &'static str,
        value: Option<&T>,
        secret: Option<&'a LocalSecretReference>,
    ) -> Result<ChosenMethod<'a>, TranslateError> {
        let value = value
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| TranslateError::Internal(e.to_string()))?;
        Ok(ChosenMethod {
            plugin,
            field,
            value,
            secret,
        })
    }
    // The CRD's CEL rule admits exactly one; the first set one wins here.
    if let Some(c) = &auth.key_auth {
        method(
            "key-auth",
            "keyAuth",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else if let Some(c) = &auth.basic_auth {
        method(
            "basic-auth",
            "basicAuth",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else if let Some(c) = &auth.jwt_auth {
        method(
            "jwt-auth",
            "jwtAuth",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else if let Some(c) = &auth.wolf_rbac {
        method(
            "wolf-rbac",
            "wolfRBAC",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else if let Some(c) = &auth.hmac_auth {
        method(
            "hmac-auth",
            "hmacAuth",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else if let Some(c) = &auth.ldap_auth {
        method(
            "ldap-auth",
            "ldapAuth",
            c.value.as_ref(),
            c.secret_ref.as_ref(),
        )
    } else {
        Err(TranslateError::Invalid(
            "authParameter sets no authentication method".into(),
        ))
    }
}

/// The credentials of the chosen method: inline, or every key of the Secret.
fn credentials(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    namespace: &str,
    method: &ChosenMethod<'_>,
) -> Result<Map<String, Value>, TranslateError> {
    if let Some(value) = &method.value {
        return Ok(value.as_object().cloned().unwrap_or_default());
    }
    let reference = method
        .secret
        .ok_or_else(|| TranslateError::Invalid("set value or secretRef".into()))?;
    let key = ObjectKey::new(namespace, &reference.name);
    deps.insert(Dependency::object(SecretKind::KIND, key.clone()));
    let secret = input.snapshot.get::<SecretKind>(&key).ok_or_else(|| {
        TranslateError::missing(SecretKind::KIND, &key, format!("secretRef {key} not found"))
    })?;
    Ok(secret_strings(secret)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

fn require(
    fields: &Map<String, Value>,
    method: &str,
    names: &[&str],
) -> Result<(), TranslateError> {
    for name in names {
        if fields
            .get(*name)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(TranslateError::Invalid(format!("{method} needs {name}")));
        }
    }
    Ok(())
}

/// Secret values are strings; turn the numeric and boolean ones back.
fn typed(
    fields: &mut Map<String, Value>,
    integers: &[&str],
    booleans: &[&str],
    method: &str,
) -> Result<(), TranslateError> {
    for name in integers {
        if let Some(Value::String(text)) = fields.get(*name) {
            let number: i64 = text.parse().map_err(|_| {
                TranslateError::Invalid(format!("{method}.{name} {text:?} is not an integer"))
            })?;
            fields.insert((*name).to_string(), number.into());
        }
    }
    for name in booleans {
        if let Some(Value::String(text)) = fields.get(*name) {
            let flag = match text.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(TranslateError::Invalid(format!(
                        "{method}.{name} {text:?} is not true or false"
                    )));
                }
            };
            fields.insert((*name).to_string(), flag.into());
        }
    }
    Ok(())
}

fn build(
    input: TranslateInput<'_>,
    object: &ApisixConsumer,
    deps: &mut UnitDeps,
) -> Result<UnitObjects, TranslateError> {
    let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let (plugin, conf) = authentication(input, deps, namespace, &object.spec.auth_parameter)
        .map_err(|error| error.at("spec.authParameter"))?;
    let mut plugins = match &object.spec.plugins {
        Some(extra) => plugins_object(
            input.config,
            input.snapshot,
            deps,
            namespace,
            extra,
            PluginUse::Consumer,
        )
        .map_err(|error| error.at("spec.plugins"))?,
        None => Map::new(),
    };
    if plugins.contains_key(plugin) {
        return Err(TranslateError::Invalid(format!(
            "plugins repeats the authentication plugin {plugin}"
        )));
    }
    plugins.insert(plugin.to_string(), conf);
    let username = username(input.config, namespace, name);
    let mut out = UnitObjects::default();
    let labels = labels(
        input.config,
        KIND,
        namespace,
        name,
        object.metadata.labels.as_ref(),
        &mut out.warnings,
    );
    let value = json!({
        "username": username,
        "labels": labels,
        "plugins": plugins,
    });
    out.add(input.config, ApisixDir::Consumers, &username, value)?;
    Ok(out)
}

/// The authentication plugin and its consumer-side configuration, checked
/// and with its secret field encrypted.
fn authentication(
    input: TranslateInput<'_>,
    deps: &mut UnitDeps,
    namespace: &str,
    auth: &AuthParameter,
) -> Result<(&'static str, Value), TranslateError> {
    let method = chosen_method(auth)?;
    let fields = credentials(input, deps, namespace, &method)?;
    let plugin = method.plugin;
    let mut conf = auth_plugin_conf(plugin, method.field, fields)?;
    if let Some(schemas) = &input.config.schemas {
        schemas.check(plugin, &conf, PluginUse::Consumer)?;
    }
    if let Some(keyring) = &input.config.keyring {
        encrypt_secret_field(plugin, &mut conf, keyring);
    }
    Ok((plugin, conf))
}

/// The consumer-side configuration of the authentication plugin, from the
/// credentials' fields (`method` names them in errors).
fn auth_plugin_conf(
    plugin: &str,
    method: &str,
    mut fields: Map<String, Value>,
) -> Result<Value, TranslateError> {
    Ok(match plugin {
        "key-auth" => {
            require(&fields, method, &["key"])?;
            json!({"key": fields["key"]})
        }
        "basic-auth" => {
            require(&fields, method, &["username", "password"])?;
            json!({"username": fields["username"], "password": fields["password"]})
        }
        "jwt-auth" => jwt_conf(method, fields)?,
        "hmac-auth" => hmac_conf(method, &fields)?,
        "ldap-auth" => {
            require(&fields, method, &["user_dn"])?;
            json!({"user_dn": fields["user_dn"]})
        }
        // wolf-rbac: its fields as given.
        _ => {
            fields.retain(|_, v| !v.is_null());
            Value::Object(fields)
        }
    })
}

fn jwt_conf(method: &str, mut fields: Map<String, Value>) -> Result<Value, TranslateError> {
    require(&fields, method, &["key"])?;
    typed(
        &mut fields,
        &["exp", "lifetime_grace_period"],
        &["base64_secret"],
        method,
    )?;
    if fields
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp < 1)
    {
        fields.insert("exp".into(), 86_400.into());
    }
    fields.retain(|_, v| !v.is_null());
    Ok(Value::Object(fields))
}

fn hmac_conf(method: &str, fields: &Map<String, Value>) -> Result<Value, TranslateError> {
    require(fields, method, &["access_key", "secret_key"])?;
    // APISIX 3 keeps only the key id and secret on the consumer; the
    // algorithm, clock skew and header settings moved to the route's
    // hmac-auth plugin. Refuse them here rather than drop them silently.
    if let Some(moved) = fields
        .iter()
        .find(|(k, v)| !matches!(k.as_str(), "access_key" | "secret_key") && !v.is_null())
    {
        return Err(TranslateError::Invalid(format!(
            "hmacAuth.{} is a route-level setting in APISIX 3: set it on the route's hmac-auth plugin",
            moved.0
        )));
    }
    Ok(json!({"key_id": fields["access_key"], "secret_key": fields["secret_key"]}))
}

/// Encrypts the consumer-side `encrypt_fields` of the auth plugins.
fn encrypt_secret_field(plugin: &str, conf: &mut Value, keyring: &crate::apisix::Keyring) {
    let field = match plugin {
        "key-auth" => Some("key"),
        "basic-auth" => Some("password"),
        "jwt-auth" => Some("secret"),
        "hmac-auth" => Some("secret_key"),
        _ => None,
    };
    if let Some(Value::String(plain)) = field.and_then(|f| conf.get_mut(f)) {
        *plain = keyring.encrypt(plain);
    }
}
