//! The APISIX CRs held by the index, one variant per translated kind.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;

use crate::api::ApisixRoute;
use crate::api::{
    ApisixClusterConfig, ApisixConsumer, ApisixGlobalRule, ApisixPluginConfig, ApisixStatus,
    ApisixTls,
};
use crate::sync::UnitKey;
use crate::translate::{
    TranslateInput, Translation, apisix_route, apisix_tls, consumer, plugin_sets,
};

#[derive(Debug, Clone)]
pub enum ApisixObject {
    Route(Arc<ApisixRoute>),
    Tls(Arc<ApisixTls>),
    PluginConfig(Arc<ApisixPluginConfig>),
    GlobalRule(Arc<ApisixGlobalRule>),
    ClusterConfig(Arc<ApisixClusterConfig>),
    Consumer(Arc<ApisixConsumer>),
}

impl ApisixObject {
    pub fn kind(&self) -> &'static str {
        match self {
            ApisixObject::Route(_) => apisix_route::KIND,
            ApisixObject::Tls(_) => apisix_tls::KIND,
            ApisixObject::PluginConfig(_) => plugin_sets::PLUGIN_CONFIG_KIND,
            ApisixObject::GlobalRule(_) => plugin_sets::GLOBAL_RULE_KIND,
            ApisixObject::ClusterConfig(_) => plugin_sets::CLUSTER_CONFIG_KIND,
            ApisixObject::Consumer(_) => consumer::KIND,
        }
    }

    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            ApisixObject::Route(o) => &o.metadata,
            ApisixObject::Tls(o) => &o.metadata,
            ApisixObject::PluginConfig(o) => &o.metadata,
            ApisixObject::GlobalRule(o) => &o.metadata,
            ApisixObject::ClusterConfig(o) => &o.metadata,
            ApisixObject::Consumer(o) => &o.metadata,
        }
    }

    /// `None` for the cluster-scoped ApisixClusterConfig.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            ApisixObject::ClusterConfig(_) => None,
            _ => Some(self.meta().namespace.as_deref().unwrap_or("default")),
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    pub fn unit_key(&self) -> UnitKey {
        UnitKey::new(self.kind(), self.namespace(), self.name())
    }

    /// `spec.ingressClassName`, where the kind has one.
    pub fn ingress_class_name(&self) -> Option<&str> {
        match self {
            ApisixObject::Route(o) => o.spec.ingress_class_name.as_deref(),
            ApisixObject::Tls(o) => o.spec.ingress_class_name.as_deref(),
            ApisixObject::PluginConfig(o) => o.spec.ingress_class_name.as_deref(),
            ApisixObject::GlobalRule(o) => o.spec.ingress_class_name.as_deref(),
            ApisixObject::ClusterConfig(_) => None,
            ApisixObject::Consumer(o) => o.spec.ingress_class_name.as_deref(),
        }
        .filter(|name| !name.is_empty())
    }

    pub fn generation(&self) -> Option<i64> {
        self.meta().generation
    }

    /// The status as last read from the API server.
    pub fn status(&self) -> Option<&ApisixStatus> {
        match self {
            ApisixObject::Route(o) => o.status.as_ref(),
            ApisixObject::Tls(o) => o.status.as_ref(),
            ApisixObject::PluginConfig(o) => o.status.as_ref(),
            ApisixObject::GlobalRule(o) => o.status.as_ref(),
            ApisixObject::ClusterConfig(o) => o.status.as_ref(),
            ApisixObject::Consumer(o) => o.status.as_ref(),
        }
    }

    /// Where its status subresource lives.
    pub fn api_resource(&self) -> kube::discovery::ApiResource {
        match self {
            ApisixObject::Route(_) => kube::discovery::ApiResource::erase::<ApisixRoute>(&()),
            ApisixObject::Tls(_) => kube::discovery::ApiResource::erase::<ApisixTls>(&()),
            ApisixObject::PluginConfig(_) => {
                kube::discovery::ApiResource::erase::<ApisixPluginConfig>(&())
            }
            ApisixObject::GlobalRule(_) => {
                kube::discovery::ApiResource::erase::<ApisixGlobalRule>(&())
            }
            ApisixObject::ClusterConfig(_) => {
                kube::discovery::ApiResource::erase::<ApisixClusterConfig>(&())
            }
            ApisixObject::Consumer(_) => kube::discovery::ApiResource::erase::<ApisixConsumer>(&()),
        }
    }

    pub fn object_ref(&self) -> ObjectReference {
        match self {
            ApisixObject::Route(o) => o.object_ref(&()),
            ApisixObject::Tls(o) => o.object_ref(&()),
            ApisixObject::PluginConfig(o) => o.object_ref(&()),
            ApisixObject::GlobalRule(o) => o.object_ref(&()),
            ApisixObject::ClusterConfig(o) => o.object_ref(&()),
            ApisixObject::Consumer(o) => o.object_ref(&()),
        }
    }

    pub fn translate(&self, input: TranslateInput<'_>) -> Translation {
        match self {
            ApisixObject::Route(o) => apisix_route::translate(input, o),
            ApisixObject::Tls(o) => apisix_tls::translate(input, o),
            ApisixObject::PluginConfig(o) => plugin_sets::translate_plugin_config(input, o),
            ApisixObject::GlobalRule(o) => plugin_sets::translate_global_rule(input, o),
            ApisixObject::ClusterConfig(o) => plugin_sets::translate_cluster_config(input, o),
            ApisixObject::Consumer(o) => consumer::translate(input, o),
        }
    }
}
