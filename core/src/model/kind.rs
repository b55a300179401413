//! The contract of the kind registry: what every watched Kubernetes kind
//! tells the rest of the operator about itself. A kind implements
//! [`SourceKind`] (how it is watched and stored); a kind whose objects are
//! translated into APISIX objects also implements [`UnitKind`]. The registry
//! (`crate::registry`) lists them once; the watches, the feeder, the index,
//! `translate -f`, `diff --live` and the metrics all go through that list.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::ObjectReference;
use kube_core::Resource;
use kube_core::discovery::ApiResource;
use serde::de::DeserializeOwned;

use super::decode::{self, DecodeError};
use super::{
    Dependency, ObjectKey, Snapshot, Store, Touched, TranslateInput, Translation, UnitKey,
};
use crate::api::ApisixStatus;

/// When a kind is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchWhen {
    /// A built-in kind: always.
    Always,
    /// A custom resource: when its CRD is installed (a missing CRD is
    /// logged, and the kind ignored until the operator restarts).
    WhenServed,
    /// Only while another kind's CRD is installed (Pods are read only for
    /// ApisixUpstream subsets).
    WhenServedWith {
        group: &'static str,
        version: &'static str,
        kind: &'static str,
    },
    /// Namespaces: with `--namespace-selector`, those it selects (by its
    /// labels); without one, all of them while this kind's CRD is installed
    /// (Gateway listeners admit routes by their namespace's labels).
    WithNamespaceSelectorOrWhenServed {
        group: &'static str,
        version: &'static str,
        kind: &'static str,
    },
}

/// How a unit's outcome is reported to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusStyle {
    /// Warning Events on failure (Ingress: its status is the load balancer).
    EventsOnly,
    /// Warning Events and `Accepted`/`Programmed` conditions (the APISIX CRDs).
    Conditions,
    /// Warning Events and the status body the translation computes, written
    /// once the unit's objects are in etcd (the Gateway API kinds).
    GatewayApi,
}

/// A watched kind.
pub trait SourceKind: Sized + Send + Sync + 'static {
    /// What one object decodes into.
    type Object: Resource<DynamicType = ()>
        + DeserializeOwned
        + Clone
        + fmt::Debug
        + Send
        + Sync
        + 'static;
    /// Where the snapshot keeps this kind's objects.
    type Store: Store<Object = Self::Object>;
    /// The Kubernetes kind: also the unit kind, the dependency kind and the
    /// metric label.
    const KIND: &'static str;
    /// Namespaced (watched per served namespace) or cluster-scoped.
    const NAMESPACED: bool;
    const WATCH: WatchWhen;
    fn key_of(object: &Self::Object) -> ObjectKey {
        ObjectKey::of_meta(object.meta(), Self::NAMESPACED)
    }
}

/// A kind whose every object is a unit: translated into APISIX objects,
/// with its outcome reported.
pub trait UnitKind: SourceKind {
    const STATUS: StatusStyle;
    /// Where the object lists the hosts of its certificates (named when
    /// admission refuses a host another object serves).
    const SNI_FIELD: &'static str = "spec";

    /// The translation entry point (pure).
    fn translate(input: TranslateInput<'_>, object: &Self::Object) -> Translation;

    /// `spec.ingressClassName`, for kinds that carry one: an object naming
    /// a class that is not ours is not served.
    fn ingress_class_name(_object: &Self::Object) -> Option<&str> {
        None
    }

    /// The status last read from the API server (kinds with conditions).
    fn current_status(_object: &Self::Object) -> Option<&ApisixStatus> {
        None
    }

    /// The status last read, as JSON (kinds whose translation computes
    /// their status body).
    fn current_status_value(_object: &Self::Object) -> Option<serde_json::Value> {
        None
    }

    /// The units whose objects must be in etcd for this one to count as
    /// Programmed: itself, unless the kind only decorates others.
    fn programmed_with(
        unit: &UnitKey,
        _dependents_of: &dyn Fn(&Dependency) -> Vec<UnitKey>,
    ) -> Vec<UnitKey> {
        vec![unit.clone()]
    }
}

/// A decoded object of some kind, on its way from a watch or a file to the
/// kind's store.
pub type AnyObject = Box<dyn Any + Send + Sync>;

/// Where a unit's status is written, and what it says now.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusTarget {
    pub object: ObjectReference,
    pub api_resource: ApiResource,
    pub generation: Option<i64>,
    pub current: Option<ApisixStatus>,
}

/// A registered kind, type-erased, so one list holds them all.
pub trait Kind: Send + Sync {
    fn name(&self) -> &'static str;
    fn namespaced(&self) -> bool;
    fn watch(&self) -> WatchWhen;
    /// `group/version` (or `version` for the core group).
    fn api_version(&self) -> String;
    fn api_resource(&self) -> ApiResource;
    /// Decodes one object of this kind (as `translate -f` reads files).
    fn decode(&self, value: serde_json::Value) -> Result<AnyObject, DecodeError>;
    fn key_of(&self, object: &AnyObject) -> ObjectKey;
    /// Whether the snapshot holds object `key` of this kind.
    fn contains(&self, snapshot: &Snapshot, key: &ObjectKey) -> bool;
    fn apply(&self, snapshot: &mut Snapshot, key: ObjectKey, object: AnyObject) -> Touched;
    fn delete(&self, snapshot: &mut Snapshot, key: &ObjectKey) -> Touched;
    /// Every key the snapshot holds of this kind.
    fn keys(&self, snapshot: &Snapshot) -> Vec<ObjectKey>;
    /// The unit side, for kinds that translate.
    fn unit(&self) -> Option<&dyn UnitOps>;
}

/// The unit side of a registered kind, type-erased.
pub trait UnitOps: Send + Sync {
    fn status_style(&self) -> StatusStyle;
    fn sni_field(&self) -> &'static str;
    /// `None` when the snapshot holds no such object (it was deleted).
    fn translate(&self, input: TranslateInput<'_>, key: &ObjectKey) -> Option<Translation>;
    /// Translates `object` (of this kind) as if the snapshot held it in
    /// place of its stored version: what admission asks of a candidate.
    fn translate_candidate(&self, input: TranslateInput<'_>, object: &AnyObject) -> Translation;
    fn ingress_class_name(&self, snapshot: &Snapshot, key: &ObjectKey) -> Option<String>;
    /// [`UnitOps::ingress_class_name`] of a candidate object.
    fn candidate_class_name(&self, object: &AnyObject) -> Option<String>;
    fn status_target(&self, snapshot: &Snapshot, key: &ObjectKey) -> Option<StatusTarget>;
    /// [`UnitKind::current_status_value`] of the stored object.
    fn current_status_value(
        &self,
        snapshot: &Snapshot,
        key: &ObjectKey,
    ) -> Option<serde_json::Value>;
    fn programmed_with(
        &self,
        unit: &UnitKey,
        dependents_of: &dyn Fn(&Dependency) -> Vec<UnitKey>,
    ) -> Vec<UnitKey>;
}

/// An input kind in the registry.
pub struct Input<K>(PhantomData<fn() -> K>);
/// A unit kind in the registry.
pub struct Unit<K>(PhantomData<fn() -> K>);

impl<K> Input<K> {
    pub const NEW: Input<K> = Input(PhantomData);
}

impl<K> Unit<K> {
    pub const NEW: Unit<K> = Unit(PhantomData);
}

fn downcast<K: SourceKind>(object: AnyObject) -> K::Object {
    *object
        .downcast::<K::Object>()
        .unwrap_or_else(|_| panic!("an object of another kind reached {}", K::KIND))
}

fn downcast_ref<K: SourceKind>(object: &AnyObject) -> &K::Object {
    object
        .downcast_ref::<K::Object>()
        .unwrap_or_else(|| panic!("an object of another kind reached {}", K::KIND))
}

fn class_name<K: UnitKind>(object: &K::Object) -> Option<String> {
    K::ingress_class_name(object)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// The kind-independent half of [`Kind`], shared by inputs and units.
macro_rules! source_kind_methods {
    () => {
        fn name(&self) -> &'static str {
            K::KIND
        }
        fn namespaced(&self) -> bool {
            K::NAMESPACED
        }
        fn watch(&self) -> WatchWhen {
            K::WATCH
        }
        fn api_version(&self) -> String {
            K::Object::api_version(&()).into_owned()
        }
        fn api_resource(&self) -> ApiResource {
            ApiResource::erase::<K::Object>(&())
        }
        fn decode(&self, value: serde_json::Value) -> Result<AnyObject, DecodeError> {
            decode::from_value::<K::Object>(value).map(|o| Box::new(o) as AnyObject)
        }
        fn key_of(&self, object: &AnyObject) -> ObjectKey {
            K::key_of(downcast_ref::<K>(object))
        }
        fn contains(&self, snapshot: &Snapshot, key: &ObjectKey) -> bool {
            snapshot.get::<K>(key).is_some()
        }
        fn apply(&self, snapshot: &mut Snapshot, key: ObjectKey, object: AnyObject) -> Touched {
            snapshot.store_mut::<K>().apply(key, downcast::<K>(object))
        }
        fn delete(&self, snapshot: &mut Snapshot, key: &ObjectKey) -> Touched {
            snapshot.store_mut::<K>().delete(key)
        }
        fn keys(&self, snapshot: &Snapshot) -> Vec<ObjectKey> {
            snapshot.store::<K>().map(Store::keys).unwrap_or_default()
        }
    };
}

impl<K: SourceKind> Kind for Input<K> {
    source_kind_methods!();
    fn unit(&self) -> Option<&dyn UnitOps> {
        None
    }
}

impl<K: UnitKind> Kind for Unit<K> {
    source_kind_methods!();
    fn unit(&self) -> Option<&dyn UnitOps> {
        Some(self)
    }
}

impl<K: UnitKind> UnitOps for Unit<K> {
    fn status_style(&self) -> StatusStyle {
        K::STATUS
    }

    fn sni_field(&self) -> &'static str {
        K::SNI_FIELD
    }

    fn translate(&self, input: TranslateInput<'_>, key: &ObjectKey) -> Option<Translation> {
        let object = input.snapshot.get::<K>(key)?;
        Some(K::translate(input, object))
    }

    fn translate_candidate(&self, input: TranslateInput<'_>, object: &AnyObject) -> Translation {
        K::translate(input, downcast_ref::<K>(object))
    }

    fn ingress_class_name(&self, snapshot: &Snapshot, key: &ObjectKey) -> Option<String> {
        class_name::<K>(snapshot.get::<K>(key)?)
    }

    fn candidate_class_name(&self, object: &AnyObject) -> Option<String> {
        class_name::<K>(downcast_ref::<K>(object))
    }

    fn status_target(&self, snapshot: &Snapshot, key: &ObjectKey) -> Option<StatusTarget> {
        let object = snapshot.get::<K>(key)?;
        Some(StatusTarget {
            object: object.object_ref(&()),
            api_resource: ApiResource::erase::<K::Object>(&()),
            generation: object.meta().generation,
            current: K::current_status(object).cloned(),
        })
    }

    fn current_status_value(
        &self,
        snapshot: &Snapshot,
        key: &ObjectKey,
    ) -> Option<serde_json::Value> {
        K::current_status_value(snapshot.get::<K>(key)?)
    }

    fn programmed_with(
        &self,
        unit: &UnitKey,
        dependents_of: &dyn Fn(&Dependency) -> Vec<UnitKey>,
    ) -> Vec<UnitKey> {
        K::programmed_with(unit, dependents_of)
    }
}
