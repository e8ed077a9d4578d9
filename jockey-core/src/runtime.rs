//! Runtime settings of a project (`deploy --env/--env-file/--replicas/--cpu/--memory`, and the
//! secret environment of `secrets` / `--secret-env-file`): checked here before anything is
//! written, and merged into the Deployment `deploy` applies. Settings a deploy does not name keep
//! the value the live Deployment has. Pure.

use crate::defaults::{CONTAINER_NAME, DEFAULT_LIMITS, DEFAULT_REQUESTS, parse_quantity};
use crate::names::ANNOTATION_SECRET_SHA256;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The API server refuses a Secret whose data exceeds 1 MiB.
pub const SECRET_MAX_BYTES: usize = 1024 * 1024;

/// What one deploy asks for; `None`/empty means "keep what is live".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Plain environment variables, set on top of the live ones (later entries win).
    pub env: Vec<(String, String)>,
    pub replicas: Option<i32>,
    /// CPU request; the limit is raised to it when lower.
    pub cpu: Option<String>,
    /// Memory request; the memory limit follows it.
    pub memory: Option<String>,
}

/// An environment variable name a shell, Python's `os.environ` and every container runtime
/// agree on: a letter or `_`, then letters, digits and `_`.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid environment variable name: use letters, digits and '_', \
             not starting with a digit (e.g. OPENAI_API_KEY)"
        ))
    }
}

/// `KEY=VALUE` of `--env` or `secrets set`. The error names the key, never the value.
pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        // No '=': the whole argument may be a value pasted in the wrong place, so it is not shown.
        return Err(
            "expected KEY=VALUE (an argument without '=' was given; it is not shown, in case it \
             is a secret)"
                .to_string(),
        );
    };
    check_env_name(key)?;
    Ok((key.to_string(), value.to_string()))
}

/// A Kubernetes resource quantity (`500m`, `2`, `1.5`, `512Mi`, `2Gi`, `1e3`), parsed as the
/// API server would take it (see [`parse_quantity`]), so that a typo is refused before anything
/// is written.
pub fn check_quantity(value: &str) -> Result<(), String> {
    match parse_quantity(value) {
        Some(n) if n > 0.0 => Ok(()),
        _ => Err(format!(
            "{value:?} is not a positive Kubernetes quantity; write e.g. 500m or 2 (CPU), 512Mi \
             or 2Gi (memory)"
        )),
    }
}

/// SHA-256 of a Secret's data, keys in order, each key and value length-prefixed so that no
/// two different maps hash alike. Goes on the pod template: the data never does.
pub fn secret_data_sha256(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    hex::encode(h.finalize())
}

/// Refuses secret data the API server would refuse (over 1 MiB), naming the largest keys.
pub fn check_secret_size(data: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let total: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total <= SECRET_MAX_BYTES {
        return Ok(());
    }
    let mut by_size: Vec<(&String, usize)> = data.iter().map(|(k, v)| (k, v.len())).collect();
    by_size.sort_by_key(|b| std::cmp::Reverse(b.1));
    let largest: Vec<String> = by_size
        .iter()
        .take(3)
        .map(|(k, n)| format!("{k} ({n} bytes)"))
        .collect();
    Err(format!(
        "the secret values total {total} bytes, over the {SECRET_MAX_BYTES}-byte limit of a \
         Kubernetes Secret (largest: {}); keep large files in the instance or object storage and \
         pass their location instead",
        largest.join(", ")
    ))
}

fn server_container(dep: &mut Deployment) -> Option<&mut Container> {
    let pod = dep.spec.template.spec.as_mut()?;
    let i = pod
        .containers
        .iter()
        .position(|c| c.name == CONTAINER_NAME)
        .or((!pod.containers.is_empty()).then_some(0))?;
    pod.containers.get_mut(i)
}

fn live_server_container(dep: &Deployment) -> Option<&Container> {
    let pod = dep.spec.template.spec.as_ref()?;
    pod.containers
        .iter()
        .find(|c| c.name == CONTAINER_NAME)
        .or(pod.containers.first())
}

/// Puts the runtime settings on the Deployment `deploy` renders (before defaulting): what the
/// flags say, else what `live` has, else jockey's defaults (1 replica, default resources).
/// `secret_sha256` is the digest of the project's Secret data, when it has one.
pub fn apply_settings(
    rendered: &mut Deployment,
    live: Option<&Deployment>,
    settings: &RuntimeSettings,
    secret_sha256: Option<&str>,
) {
    let live_c = live.and_then(live_server_container);
    let live_replicas = live.and_then(|d| d.spec.replicas);
    let spec = &mut rendered.spec;
    spec.replicas = Some(settings.replicas.or(live_replicas).unwrap_or(1));
    if let Some(sha) = secret_sha256 {
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANNOTATION_SECRET_SHA256.to_string(), sha.to_string());
    }
    let Some(c) = server_container(rendered) else {
        return;
    };

    // Environment: the live list, each flag replacing or appending its key.
    let mut env: Vec<EnvVar> = live_c.and_then(|l| l.env.clone()).unwrap_or_default();
    for (k, v) in &settings.env {
        let var = EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            value_from: None,
        };
        match env.iter_mut().find(|e| e.name == *k) {
            Some(e) => *e = var,
            None => env.push(var),
        }
    }
    c.env = (!env.is_empty()).then_some(env);

    // Resources: the live ones, else the defaults; then the flags.
    let live_res = live_c.and_then(|l| l.resources.clone()).unwrap_or_default();
    let mut requests = live_res.requests.unwrap_or_default();
    let mut limits = live_res.limits.unwrap_or_default();
    if requests.is_empty() && limits.is_empty() {
        for (k, v) in DEFAULT_REQUESTS {
            requests.insert(k.to_string(), Quantity(v.to_string()));
        }
        for (k, v) in DEFAULT_LIMITS {
            limits.insert(k.to_string(), Quantity(v.to_string()));
        }
    }
    if let Some(cpu) = &settings.cpu {
        requests.insert("cpu".into(), Quantity(cpu.clone()));
        let below = limits
            .get("cpu")
            .and_then(|l| parse_quantity(&l.0))
            .zip(parse_quantity(cpu))
            .is_some_and(|(l, r)| l < r);
        if below {
            limits.insert("cpu".into(), Quantity(cpu.clone()));
        }
    }
    if let Some(mem) = &settings.memory {
        requests.insert("memory".into(), Quantity(mem.clone()));
        limits.insert("memory".into(), Quantity(mem.clone()));
    }
    let res = c.resources.get_or_insert_with(Default::default);
    res.requests = (!requests.is_empty()).then_some(requests);
    res.limits = (!limits.is_empty()).then_some(limits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::render_deployment;
    use crate::{ContentHash, ProjectId};

    fn rendered() -> Deployment {
        render_deployment(
            &ProjectId::parse("demo").unwrap(),
            &ContentHash::from_digest(&[7; 32]),
        )
    }

    fn server(d: &Deployment) -> Container {
        d.spec.clone().template.spec.unwrap().containers[0].clone()
    }

    fn q(c: &Container, kind: &str, res: &str) -> Option<String> {
        let r = c.resources.clone()?;
        let map = if kind == "requests" {
            r.requests
        } else {
            r.limits
        };
        map?.get(res).map(|q| q.0.clone())
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_X", "OPENAI_API_KEY", "a1"] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A.B", "A B", "É"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_assignment("K=a=b").unwrap(),
            ("K".to_string(), "a=b".to_string())
        );
        let e = parse_assignment("hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(parse_assignment("1X=v").unwrap_err().contains("\"1X\""));
    }

    #[test]
    fn quantities() {
        for ok in ["500m", "2", "1.5", "512Mi", "2Gi", "1e3", "+1", "0.5"] {
            assert!(check_quantity(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "abc", "2GB", "1.2.3", "-1", "0", "Mi", "5 Gi", "1e", "1ee3", ".", "1e3Ki", "0m",
            "inf", "1Zi", "2gb",
        ] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_hash_and_size() {
        let a = BTreeMap::from([("A".to_string(), b"1".to_vec())]);
        let b = BTreeMap::from([("A".to_string(), b"2".to_vec())]);
        assert_ne!(secret_data_sha256(&a), secret_data_sha256(&b));
        assert_eq!(secret_data_sha256(&a), secret_data_sha256(&a.clone()));
        // Concatenation ambiguity: "AB"="" vs "A"="B".
        let c = BTreeMap::from([("AB".to_string(), b"".to_vec())]);
        let d = BTreeMap::from([("A".to_string(), b"B".to_vec())]);
        assert_ne!(secret_data_sha256(&c), secret_data_sha256(&d));
        assert!(check_secret_size(&a).is_ok());
        let big = BTreeMap::from([("BIG".to_string(), vec![b'x'; SECRET_MAX_BYTES])]);
        let e = check_secret_size(&big).unwrap_err();
        assert!(e.contains("BIG") && !e.contains("xxx"), "{e}");
    }

    #[test]
    fn new_deployment_gets_flags_or_defaults() {
        let mut d = rendered();
        apply_settings(&mut d, None, &RuntimeSettings::default(), None);
        assert_eq!(d.spec.replicas, Some(1));
        let c = server(&d);
        assert_eq!(c.env, None);
        assert_eq!(q(&c, "requests", "memory").as_deref(), Some("256Mi"));

        let mut d = rendered();
        let s = RuntimeSettings {
            env: vec![("A".into(), "1".into())],
            replicas: Some(3),
            cpu: Some("2".into()),
            memory: Some("2Gi".into()),
        };
        apply_settings(&mut d, None, &s, Some("abc"));
        assert_eq!(d.spec.replicas, Some(3));
        let c = server(&d);
        assert_eq!(c.env.clone().unwrap()[0].value.as_deref(), Some("1"));
        assert_eq!(q(&c, "requests", "cpu").as_deref(), Some("2"));
        assert_eq!(
            q(&c, "limits", "cpu").as_deref(),
            Some("2"),
            "raised to the request"
        );
        assert_eq!(q(&c, "requests", "memory").as_deref(), Some("2Gi"));
        assert_eq!(q(&c, "limits", "memory").as_deref(), Some("2Gi"), "follows");
        let ann = d.spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(ann[ANNOTATION_SECRET_SHA256], "abc");
    }

    #[test]
    fn omitted_settings_keep_the_live_values() {
        let mut live = rendered();
        apply_settings(
            &mut live,
            None,
            &RuntimeSettings {
                env: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
                replicas: Some(4),
                cpu: None,
                memory: Some("4Gi".into()),
            },
            None,
        );
        let mut d = rendered();
        apply_settings(
            &mut d,
            Some(&live),
            &RuntimeSettings {
                env: vec![("B".into(), "3".into()), ("C".into(), "4".into())],
                ..Default::default()
            },
            None,
        );
        assert_eq!(d.spec.replicas, Some(4));
        let c = server(&d);
        let env: Vec<(String, String)> = c
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap()))
            .collect();
        assert_eq!(
            env,
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "3".to_string()),
                ("C".to_string(), "4".to_string())
            ]
        );
        assert_eq!(q(&c, "limits", "memory").as_deref(), Some("4Gi"));
        assert_eq!(q(&c, "requests", "cpu").as_deref(), Some("100m"));
    }
}
