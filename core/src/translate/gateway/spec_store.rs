//! The store of Gateways and GatewayClasses: a change that leaves an
//! object's spec as it was (above all the status the leader writes, echoed
//! by the watch) touches nothing that reads it. So a Gateway's status write
//! (its `attachedRoutes` move with every route attached or detached) does
//! not translate every route of the Gateway again; the object's own unit
//! still does, and its status entry follows.

use std::fmt;

use crate::api::gateway::{Gateway, GatewayClass, GatewayClassSpec, GatewaySpec};
use crate::model::{ObjectKey, Objects, Store, Touched};

/// What the routes of an object read of it.
pub trait HasSpec {
    type Spec: PartialEq;
    fn spec_of(&self) -> &Self::Spec;
}

impl HasSpec for Gateway {
    type Spec = GatewaySpec;
    fn spec_of(&self) -> &GatewaySpec {
        &self.spec
    }
}

impl HasSpec for GatewayClass {
    type Spec = GatewayClassSpec;
    fn spec_of(&self) -> &GatewayClassSpec {
        &self.spec
    }
}

pub struct SpecStore<T>(Objects<T>);

impl<T> Default for SpecStore<T> {
    fn default() -> Self {
        SpecStore(Objects::default())
    }
}

impl<T> Clone for SpecStore<T> {
    fn clone(&self) -> Self {
        SpecStore(self.0.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for SpecStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: HasSpec + fmt::Debug + Send + Sync + 'static> Store for SpecStore<T> {
    type Object = T;

    fn apply(&mut self, key: ObjectKey, object: T) -> Touched {
        let same_spec = self
            .0
            .get(&key)
            .is_some_and(|old| old.spec_of() == object.spec_of());
        let touched = self.0.apply(key, object);
        if same_spec { Touched::Nothing } else { touched }
    }

    fn delete(&mut self, key: &ObjectKey) -> Touched {
        self.0.delete(key)
    }

    fn get(&self, key: &ObjectKey) -> Option<&T> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.0.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway(port: i32, status: serde_json::Value) -> Gateway {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"namespace": "ns", "name": "gw"},
            "spec": {"gatewayClassName": "apisix", "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_status_change_touches_nothing_a_spec_change_does() {
        let mut store = SpecStore::<Gateway>::default();
        let key = ObjectKey::new("ns", "gw");
        assert_eq!(
            store.apply(key.clone(), gateway(80, json!({}))),
            Touched::Itself
        );
        let written = json!({"listeners": [{"name": "http", "attachedRoutes": 3, "supportedKinds": [], "conditions": []}]});
        assert_eq!(
            store.apply(key.clone(), gateway(80, written)),
            Touched::Nothing
        );
        assert_eq!(
            store.apply(key.clone(), gateway(8080, json!({}))),
            Touched::Itself
        );
        assert_eq!(store.delete(&key), Touched::Itself);
    }
}
