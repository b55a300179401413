//! ApisixPluginConfig → plugin_config; ApisixGlobalRule → global_rule;
//! ApisixClusterConfig → a global_rule of monitoring plugins.

use serde_json::{Map, Value, json};

use super::plugins::plugins_object;
use super::{TranslateError, TranslateInput, Translation, UnitObjects, display_name, labels};
use crate::api::{ApisixClusterConfig, ApisixGlobalRule, ApisixPluginConfig, ApisixStatus};
use crate::apisix::{ApisixDir, IdKind, PluginUse, object_id};
use crate::model::{Objects, SourceKind, StatusStyle, UnitDeps, UnitKind, WatchWhen};

pub const PLUGIN_CONFIG_KIND: &str = "ApisixPluginConfig";
pub const GLOBAL_RULE_KIND: &str = "ApisixGlobalRule";
pub const CLUSTER_CONFIG_KIND: &str = "ApisixClusterConfig";
/// The only ApisixClusterConfig honoured, as in the reference.
pub const CLUSTER_CONFIG_NAME: &str = "default";

/// ApisixPluginConfigs: units of their own, and inputs of the routes and
/// Ingresses that name them (which fail while it does not exist).
pub struct ApisixPluginConfigKind;

impl SourceKind for ApisixPluginConfigKind {
    type Object = ApisixPluginConfig;
    type Store = Objects<ApisixPluginConfig>;
    const KIND: &'static str = PLUGIN_CONFIG_KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixPluginConfigKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    fn translate(input: TranslateInput<'_>, object: &ApisixPluginConfig) -> Translation {
        translate_plugin_config(input, object)
    }

    fn ingress_class_name(object: &ApisixPluginConfig) -> Option<&str> {
        object.spec.ingress_class_name.as_deref()
    }

    fn current_status(object: &ApisixPluginConfig) -> Option<&ApisixStatus> {
        object.status.as_ref()
    }
}

pub struct ApisixGlobalRuleKind;

impl SourceKind for ApisixGlobalRuleKind {
    type Object = ApisixGlobalRule;
    type Store = Objects<ApisixGlobalRule>;
    const KIND: &'static str = GLOBAL_RULE_KIND;
    const NAMESPACED: bool = true;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixGlobalRuleKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    fn translate(input: TranslateInput<'_>, object: &ApisixGlobalRule) -> Translation {
        translate_global_rule(input, object)
    }

    fn ingress_class_name(object: &ApisixGlobalRule) -> Option<&str> {
        object.spec.ingress_class_name.as_deref()
    }

    fn current_status(object: &ApisixGlobalRule) -> Option<&ApisixStatus> {
        object.status.as_ref()
    }
}

/// ApisixClusterConfig (cluster-scoped; only `default` is honoured).
pub struct ApisixClusterConfigKind;

impl SourceKind for ApisixClusterConfigKind {
    type Object = ApisixClusterConfig;
    type Store = Objects<ApisixClusterConfig>;
    const KIND: &'static str = CLUSTER_CONFIG_KIND;
    const NAMESPACED: bool = false;
    const WATCH: WatchWhen = WatchWhen::WhenServed;
}

impl UnitKind for ApisixClusterConfigKind {
    const STATUS: StatusStyle = StatusStyle::Conditions;

    fn translate(input: TranslateInput<'_>, object: &ApisixClusterConfig) -> Translation {
        translate_cluster_config(input, object)
    }

    fn current_status(object: &ApisixClusterConfig) -> Option<&ApisixStatus> {
        object.status.as_ref()
    }
}

fn names(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The id routes and Ingresses use to refer to an ApisixPluginConfig.
pub fn plugin_config_id(config: &super::TranslateConfig, namespace: &str, name: &str) -> String {
    object_id(
        &config.ownership,
        IdKind::PluginConfig,
        &format!("{PLUGIN_CONFIG_KIND}/{namespace}/{name}"),
    )
}

pub fn translate_plugin_config(
    input: TranslateInput<'_>,
    object: &ApisixPluginConfig,
) -> Translation {
    let mut deps = UnitDeps::new();
    let (namespace, name) = names(&object.metadata);
    let result = plugins_object(
        input.config,
        input.snapshot,
        &mut deps,
        namespace,
        &object.spec.plugins,
        PluginUse::Http,
    )
    .map_err(|error| error.at("spec.plugins"))
    .and_then(|plugins| {
        let id = plugin_config_id(input.config, namespace, name);
        let mut out = UnitObjects::default();
        let labels = labels(
            input.config,
            PLUGIN_CONFIG_KIND,
            namespace,
            name,
            object.metadata.labels.as_ref(),
            &mut out.warnings,
        );
        let value = json!({
            "id": id,
            "name": display_name(format!("{namespace}_{name}")),
            "labels": labels,
            "plugins": plugins,
        });
        out.add(input.config, ApisixDir::PluginConfigs, &id, value)?;
        Ok(out)
    });
    Translation { result, deps }
}

pub fn translate_global_rule(input: TranslateInput<'_>, object: &ApisixGlobalRule) -> Translation {
    let mut deps = UnitDeps::new();
    let (namespace, name) = names(&object.metadata);
    let result = plugins_object(
        input.config,
        input.snapshot,
        &mut deps,
        namespace,
        &object.spec.plugins,
        PluginUse::Http,
    )
    .map_err(|error| error.at("spec.plugins"))
    .and_then(|plugins| {
        global_rule(
            input,
            &format!("{GLOBAL_RULE_KIND}/{namespace}/{name}"),
            plugins,
        )
    });
    Translation { result, deps }
}

pub fn translate_cluster_config(
    input: TranslateInput<'_>,
    object: &ApisixClusterConfig,
) -> Translation {
    let deps = UnitDeps::new();
    let name = object.metadata.name.as_deref().unwrap_or_default();
    if name != CLUSTER_CONFIG_NAME {
        return Translation {
            result: Ok(UnitObjects::default()),
            deps,
        };
    }
    let mut plugins = Map::new();
    if let Some(monitoring) = &object.spec.monitoring {
        if let Some(prometheus) = monitoring.prometheus.as_ref().filter(|p| p.enable) {
            let mut conf = Map::new();
            if let Some(prefer_name) = prometheus.prefer_name {
                conf.insert("prefer_name".into(), prefer_name.into());
            }
            plugins.insert("prometheus".into(), Value::Object(conf));
        }
        if let Some(skywalking) = monitoring.skywalking.as_ref().filter(|s| s.enable) {
            let mut conf = Map::new();
            if let Some(ratio) = skywalking.sample_ratio {
                conf.insert("sample_ratio".into(), ratio.into());
            }
            plugins.insert("skywalking".into(), Value::Object(conf));
        }
    }
    let result = (|| {
        if plugins.is_empty() {
            return Ok(UnitObjects::default());
        }
        if let Some(schemas) = &input.config.schemas {
            schemas.check_all(&plugins, PluginUse::Http)?;
        }
        global_rule(input, &format!("{CLUSTER_CONFIG_KIND}/{name}"), plugins)
    })();
    Translation { result, deps }
}

/// Global rules carry no labels or name in APISIX's schema.
fn global_rule(
    input: TranslateInput<'_>,
    identity: &str,
    plugins: Map<String, Value>,
) -> Result<UnitObjects, TranslateError> {
    if plugins.is_empty() {
        return Err(TranslateError::Invalid(
            "no enabled plugin: a global rule needs at least one".into(),
        ));
    }
    let id = object_id(&input.config.ownership, IdKind::GlobalRule, identity);
    let mut out = UnitObjects::default();
    out.add(
        input.config,
        ApisixDir::GlobalRules,
        &id,
        json!({"id": id, "plugins": plugins}),
    )?;
    Ok(out)
}
