//! The objects translation reads: one store per registered kind, each of the
//! type its [`SourceKind`] names. Pure data: watch events fill it in `run`,
//! files in `translate -f`, and tests build it directly.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::{Dependency, ObjectKey, SourceKind};

/// What a change to a store touched, for the dependency index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// Nothing that translation reads changed.
    Nothing,
    /// The object itself: units that read it (or its namespace, or every
    /// object of its kind) translate again.
    Itself,
    /// These inputs instead (an EndpointSlice touches its Service).
    These(Vec<Dependency>),
}

/// Where one kind's objects are kept. Most kinds use [`Objects`]; a kind
/// with its own lookups (EndpointSlices by Service, Pods by address) has a
/// store of its own.
pub trait Store: Default + Clone + fmt::Debug + Send + Sync + 'static {
    type Object;
    /// Records an object, replacing any previous version.
    fn apply(&mut self, key: ObjectKey, object: Self::Object) -> Touched;
    fn delete(&mut self, key: &ObjectKey) -> Touched;
    fn get(&self, key: &ObjectKey) -> Option<&Self::Object>;
    /// Every key held (a re-list removes the ones it did not see).
    fn keys(&self) -> Vec<ObjectKey>;
}

/// The plain store: objects by key.
#[derive(Debug)]
pub struct Objects<T> {
    by_key: BTreeMap<ObjectKey, Arc<T>>,
}

impl<T> Clone for Objects<T> {
    fn clone(&self) -> Self {
        Objects {
            by_key: self.by_key.clone(),
        }
    }
}

impl<T> Default for Objects<T> {
    fn default() -> Self {
        Objects {
            by_key: BTreeMap::new(),
        }
    }
}

impl<T> Objects<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &T)> {
        self.by_key.iter().map(|(k, v)| (k, v.as_ref()))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.by_key.values().map(Arc::as_ref)
    }

    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl<T: fmt::Debug + Send + Sync + 'static> Store for Objects<T> {
    type Object = T;

    fn apply(&mut self, key: ObjectKey, object: T) -> Touched {
        self.by_key.insert(key, Arc::new(object));
        Touched::Itself
    }

    fn delete(&mut self, key: &ObjectKey) -> Touched {
        match self.by_key.remove(key) {
            Some(_) => Touched::Itself,
            None => Touched::Nothing,
        }
    }

    fn get(&self, key: &ObjectKey) -> Option<&T> {
        self.by_key.get(key).map(Arc::as_ref)
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.by_key.keys().cloned().collect()
    }
}

/// A store behind a type-erased box, so one map holds every kind's.
trait AnyStore: Send + Sync {
    fn clone_box(&self) -> Box<dyn AnyStore>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<S: Store> AnyStore for S {
    fn clone_box(&self) -> Box<dyn AnyStore> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Every kind's store, by kind name.
#[derive(Default)]
pub struct Snapshot {
    stores: BTreeMap<&'static str, Box<dyn AnyStore>>,
}

impl Clone for Snapshot {
    fn clone(&self) -> Self {
        Snapshot {
            stores: self
                .stores
                .iter()
                .map(|(kind, store)| (*kind, store.clone_box()))
                .collect(),
        }
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entry<'a>(&'a dyn AnyStore);
        impl fmt::Debug for Entry<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.debug(f)
            }
        }
        f.debug_map()
            .entries(self.stores.iter().map(|(k, v)| (k, Entry(v.as_ref()))))
            .finish()
    }
}

impl Snapshot {
    /// `K`'s store, if any object of `K` was ever recorded.
    pub fn store<K: SourceKind>(&self) -> Option<&K::Store> {
        self.stores.get(K::KIND).map(|store| {
            store
                .as_any()
                .downcast_ref::<K::Store>()
                .expect("each kind name has one store type")
        })
    }

    pub fn store_mut<K: SourceKind>(&mut self) -> &mut K::Store {
        self.stores
            .entry(K::KIND)
            .or_insert_with(|| Box::new(K::Store::default()))
            .as_any_mut()
            .downcast_mut::<K::Store>()
            .expect("each kind name has one store type")
    }

    /// Object `key` of kind `K`.
    pub fn get<K: SourceKind>(&self, key: &ObjectKey) -> Option<&K::Object> {
        self.store::<K>()?.get(key)
    }

    /// Records an object of `K` (as a watch event or a file would).
    pub fn apply<K: SourceKind>(&mut self, object: K::Object) -> Touched {
        let key = K::key_of(&object);
        self.store_mut::<K>().apply(key, object)
    }

    pub fn delete<K: SourceKind>(&mut self, key: &ObjectKey) -> Touched {
        self.store_mut::<K>().delete(key)
    }
}
