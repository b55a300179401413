//! Admission review: what `run` would make of an object before the API
//! server stores it. The candidate is translated against the index's
//! snapshot exactly as a flush would translate it, and checked against the
//! rest of the desired state (collisions, references, SNIs served twice),
//! without changing the index. Pure: the webhook (in the operator crate)
//! only decodes the request and encodes the verdict.

use std::collections::BTreeSet;

use serde_json::Value;

use super::ClusterIndex;
use crate::apisix::ApisixDir;
use crate::model::{
    AnyObject, Kind, TranslateError, TranslateInput, UnitKey, UnitObjects, UnitOps,
};

/// The verdict on one candidate object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Admitted; `warnings` are shown to the user (`kubectl` prints them).
    Admitted { warnings: Vec<String> },
    /// Refused: the field of the object (when known) and why.
    Refused {
        field: Option<String>,
        reason: String,
    },
}

impl Review {
    fn admitted() -> Review {
        Review::Admitted {
            warnings: Vec::new(),
        }
    }

    fn refused(error: &TranslateError) -> Review {
        Review::Refused {
            field: error.field(),
            reason: error.cause().to_string(),
        }
    }

    /// The message the API server returns to the user.
    pub fn message(&self, unit: &UnitKey) -> Option<String> {
        match self {
            Review::Admitted { .. } => None,
            Review::Refused { field, reason } => Some(match field {
                Some(field) => format!("{unit}: {field}: {reason}"),
                None => format!("{unit}: {reason}"),
            }),
        }
    }
}

/// What the index knows when it reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Every watch has listed: checks against other objects are sound.
    Synced,
    /// Still loading: only the object's own translation is checked (another
    /// object it would conflict with may not be known yet).
    Loading,
}

impl ClusterIndex {
    /// Reviews `object` (of `kind`) as a create or an update would store it;
    /// `old` is the stored version of an update. An object this operator
    /// does not serve (another class, an unselected namespace, a kind it
    /// does not translate) is admitted unread.
    pub fn review(
        &self,
        kind: &'static dyn Kind,
        object: &AnyObject,
        old: Option<&AnyObject>,
        completeness: Completeness,
    ) -> Review {
        let Some(ops) = kind.unit() else {
            return Review::admitted();
        };
        let unit = UnitKey::of(kind.name(), &kind.key_of(object));
        let class = ops.candidate_class_name(object);
        if !self.serves_scope(unit.namespace(), class.as_deref()) {
            return Review::admitted();
        }
        let input = TranslateInput {
            config: self.config(),
            snapshot: self.snapshot(),
        };
        let checked = ops
            .translate_candidate(input, object)
            .result
            .and_then(|objects| match completeness {
                Completeness::Synced => self.check_against_others(&unit, ops, objects),
                Completeness::Loading => Ok(objects),
            });
        let mut review = match checked {
            Ok(objects) => Review::Admitted {
                warnings: objects.warnings,
            },
            Err(error) => match error.missing_object() {
                Some((missing_kind, key)) => Review::Admitted {
                    warnings: vec![format!(
                        "{}; until {missing_kind} {key} exists, {unit} is not served",
                        located(&error)
                    )],
                },
                None if old.is_some_and(|old| fails_alike(self, ops, old, &error)) => {
                    Review::Admitted {
                        warnings: vec![format!(
                            "{} (the stored version fails the same way; it stays unserved)",
                            located(&error)
                        )],
                    }
                }
                None => Review::refused(&error),
            },
        };
        if completeness == Completeness::Loading
            && let Review::Admitted { warnings } = &mut review
        {
            warnings.push(
                "the operator's caches are still loading: conflicts with other objects were not checked"
                    .into(),
            );
        }
        review
    }

    /// What a flush checks across units, plus an SNI another unit serves
    /// with another certificate (APISIX would pick one of the two).
    fn check_against_others(
        &self,
        unit: &UnitKey,
        ops: &dyn UnitOps,
        objects: UnitObjects,
    ) -> Result<UnitObjects, TranslateError> {
        let objects = self.refuse_collisions(unit, objects)?;
        let ours: Vec<(Value, BTreeSet<String>)> = objects
            .objects
            .iter()
            .filter(|(key, _)| key.dir() == ApisixDir::Ssls)
            .map(|(_, value)| {
                let value = value.to_json();
                let hosts = snis(&value).into_iter().collect();
                (value, hosts)
            })
            .collect();
        if ours.is_empty() {
            return Ok(objects);
        }
        for (_, other) in self.desired().in_dir(ApisixDir::Ssls) {
            if other.owners().any(|owner| owner == unit) {
                continue;
            }
            let theirs = other.value.to_json();
            for (mine, hosts) in &ours {
                // The same certificate twice (two Ingresses of one host
                // naming one Secret) serves alike whichever APISIX picks.
                if mine.get("cert") == theirs.get("cert") {
                    continue;
                }
                if let Some(sni) = snis(&theirs).into_iter().find(|sni| hosts.contains(sni)) {
                    return Err(TranslateError::Invalid(format!(
                        "host {sni} is already served with another certificate by {}",
                        other.unit
                    ))
                    .at(ops.sni_field()));
                }
            }
        }
        Ok(objects)
    }
}

/// `error` with its field, for a warning.
fn located(error: &TranslateError) -> String {
    match error.field() {
        Some(field) => format!("{field}: {}", error.cause()),
        None => error.cause().to_string(),
    }
}

/// Whether the stored version fails with the same error: the update does
/// not break anything that worked (a label or finalizer change to a broken
/// object must not be refused).
fn fails_alike(
    index: &ClusterIndex,
    ops: &dyn UnitOps,
    old: &AnyObject,
    error: &TranslateError,
) -> bool {
    let input = TranslateInput {
        config: index.config(),
        snapshot: index.snapshot(),
    };
    ops.translate_candidate(input, old).result.err().as_ref() == Some(error)
}

/// The SNIs of an APISIX ssl object, lower-cased.
fn snis(value: &Value) -> Vec<String> {
    let listed = value
        .get("snis")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    listed
        .chain(value.get("sni"))
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect()
}
