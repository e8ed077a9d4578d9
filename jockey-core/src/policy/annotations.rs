//! Every `alb.ingress.kubernetes.io/*` annotation on a jockey Ingress or Service, checked by its
//! type the way the AWS Load Balancer Controller parses it: one malformed value fails the model
//! build (or the deploy) of the whole ALB group, so it never reaches the controller.
//!
//! The parsing itself is [`crate::alb_annotations`]; this module runs it over an object once and
//! hands the typed values to the other rule families.

use super::Verdict;
use crate::alb_annotations::{self as alb, Known, ParseError, Parsed};
use std::collections::BTreeMap;

/// One ALB annotation of the object, parsed.
pub(crate) struct Entry {
    pub known: Known,
    pub value: String,
    pub parsed: Result<Parsed, ParseError>,
}

/// The object's ALB annotations the controller reads, in key order.
pub(crate) struct AlbAnnotations {
    pub entries: Vec<Entry>,
}

impl AlbAnnotations {
    /// Parses every ALB annotation of `annotations` as `object` carries it: malformed values are
    /// denied (naming what the controller expects and what it would do), keys the controller
    /// does not read there are warned about (harmless, but usually a typo).
    pub fn check(
        object: alb::Object,
        annotations: &BTreeMap<String, String>,
        v: &mut Verdict,
    ) -> Self {
        let mut entries = Vec::new();
        for (key, value) in annotations {
            match alb::classify(object, key) {
                None => {}
                Some(Err(unknown)) => {
                    v.warn(format!("annotation {key} is ignored: {}", unknown.why))
                }
                Some(Ok(known)) => {
                    let parsed = known.parse(value);
                    if let Err(e) = &parsed {
                        v.deny(
                            format!("metadata.annotations[{key}]"),
                            format!(
                                "is {:?}: expected {}; {} ({})",
                                e.got,
                                e.expects,
                                e.problem,
                                e.failure.consequence()
                            ),
                            "every ALB annotation has a value the AWS Load Balancer Controller accepts, as one bad value stops the shared ALB for every tenant",
                            format!("correct the value or remove the annotation {key}"),
                        );
                    }
                    entries.push(Entry {
                        known,
                        value: value.clone(),
                        parsed,
                    });
                }
            }
        }
        Self { entries }
    }

    /// The entry of `suffix` (without the prefix), parsed successfully.
    pub fn get(&self, suffix: &str) -> Option<(&Entry, &Parsed)> {
        let key = format!("{}{suffix}", alb::PREFIX);
        self.entries
            .iter()
            .find(|e| e.known.key == key)
            .and_then(|e| e.parsed.as_ref().ok().map(|p| (e, p)))
    }

    /// The entries of one reach, parsed successfully.
    pub fn of_reach<'a>(
        &'a self,
        pick: impl Fn(alb::Reach) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a Entry, &'a Parsed)> + 'a {
        self.entries
            .iter()
            .filter(move |e| pick(e.known.reach))
            .filter_map(|e| e.parsed.as_ref().ok().map(|p| (e, p)))
    }
}

/// The annotation key without the prefix.
pub(crate) fn suffix_of(key: &str) -> &str {
    key.strip_prefix(alb::PREFIX).unwrap_or(key)
}
