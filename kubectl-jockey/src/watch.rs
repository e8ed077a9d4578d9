//! The thin adapter between kube's watches and the plugin's waits: objects are reflected into
//! stores by `kube::runtime::watcher` with its default backoff, so a wait resumes (re-lists or
//! re-watches) after an API server restart or a dropped connection instead of failing, and the
//! caller judges the stores with its own pure functions after every change. The caller's
//! `--timeout` bounds every wait; the last watch error is kept for its message.

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kube::runtime::reflector::{self, Store};
use kube::runtime::wait::Condition;
use kube::runtime::watcher::watch_object;
use kube::runtime::{WatchStreamExt, reflector as reflect_into, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::pin::pin;
use std::time::Instant;

/// What one watch reports to its waiter.
enum Signal {
    /// A complete list of the selected objects is in the store (first start or a re-list).
    Listed,
    Changed,
    /// The watch failed; it is retried with backoff.
    Failed(String),
}

/// Watches `cfg`'s objects of `api` into the returned store.
fn reflect<K>(api: Api<K>, cfg: watcher::Config) -> (Store<K>, BoxStream<'static, Signal>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let signals = reflect_into(writer, watcher(api, cfg).default_backoff())
        .map(|event| match event {
            Ok(watcher::Event::InitDone) => Signal::Listed,
            Ok(_) => Signal::Changed,
            Err(e) => Signal::Failed(e.to_string()),
        })
        .boxed();
    (store, signals)
}

/// Several watches whose stores one waiter judges together.
#[derive(Default)]
pub struct Watches {
    signals: SelectAll<BoxStream<'static, (usize, Signal)>>,
    listed: Vec<bool>,
    /// The last failure of any of the watches (they go on, with backoff).
    pub last_error: Option<String>,
}

impl Watches {
    /// Adds a watch of `cfg`'s objects of `api`; judge its store once [`Self::listed`].
    pub fn add<K>(&mut self, api: Api<K>, cfg: watcher::Config) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let (store, signals) = reflect(api, cfg);
        let i = self.listed.len();
        self.listed.push(false);
        self.signals.push(signals.map(move |s| (i, s)).boxed());
        store
    }

    /// Whether every store has held a complete list at least once: before that, an object
    /// missing from a store may only not be read yet.
    pub fn listed(&self) -> bool {
        self.listed.iter().all(|l| *l)
    }

    /// Waits for the next change of any store; false when `until` came first.
    pub async fn changed(&mut self, until: Instant) -> bool {
        tokio::select! {
            next = self.signals.next() => {
                match next {
                    Some((i, Signal::Listed)) => self.listed[i] = true,
                    Some((_, Signal::Changed)) => {}
                    Some((_, Signal::Failed(e))) => self.last_error = Some(e),
                    // The watches never end on their own; nothing more will change.
                    None => {
                        tokio::time::sleep_until(until.into()).await;
                        return false;
                    }
                }
                true
            }
            _ = tokio::time::sleep_until(until.into()) => false,
        }
    }

    /// `; the watch failed: ...` for a timeout message, when one did.
    pub fn error_note(&self) -> String {
        self.last_error
            .as_deref()
            .map(|e| format!(" (watching the cluster failed meanwhile: {e})"))
            .unwrap_or_default()
    }
}

/// The wait ran out before the condition held.
#[derive(Debug)]
pub struct TimedOut {
    /// The last failure of the watch, if any (it was retried with backoff).
    pub last_error: Option<String>,
}

/// `kube::runtime::wait::await_condition` for one named object, with the watch resumed after
/// errors (backoff) and bounded by `deadline`: the object (or `None`, gone) once `cond` holds.
pub async fn until<K>(
    api: Api<K>,
    name: &str,
    cond: impl Condition<K>,
    deadline: Instant,
) -> Result<Option<K>, TimedOut>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut last_error = None;
    let mut updates = pin!(watch_object(api, name).default_backoff());
    loop {
        tokio::select! {
            next = updates.next() => match next {
                Some(Ok(obj)) if cond.matches_object(obj.as_ref()) => return Ok(obj),
                Some(Ok(_)) => {}
                Some(Err(e)) => last_error = Some(e.to_string()),
                None => return Err(TimedOut { last_error }),
            },
            _ = tokio::time::sleep_until(deadline.into()) => return Err(TimedOut { last_error }),
        }
    }
}
