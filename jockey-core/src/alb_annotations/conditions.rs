//! `conditions.<service>` and `transforms.<service>`: decoded as the controller decodes them
//! (`pkg/ingress/config_types.go`, `enhanced_backend_builder.go:170-198`), validated by the same
//! rules, and returned as typed values that say which hosts a rule can match.

use super::Problem;
use super::gojson::{GoSlice, go_struct, unmarshal};
use super::scalar::parse_cidr;

// The controller's JSON shapes (config_types.go), field names as in its `json:` tags.

go_struct! { struct RawValues {
    "regexValues" => regex_values: GoSlice<String>,
    "values" => values: GoSlice<String>,
} }

go_struct! { struct RawHttpHeader {
    "httpHeaderName" => name: String,
    "regexValues" => regex_values: GoSlice<String>,
    "values" => values: GoSlice<String>,
} }

go_struct! { struct RawQueryPair {
    "key" => key: Option<String>,
    "value" => value: String,
} }

go_struct! { struct RawQueryString {
    "values" => values: GoSlice<RawQueryPair>,
} }

go_struct! { struct RawCondition {
    "field" => field: String,
    "hostHeaderConfig" => host_header: Option<RawValues>,
    "httpHeaderConfig" => http_header: Option<RawHttpHeader>,
    "httpRequestMethodConfig" => http_request_method: Option<RawValues>,
    "pathPatternConfig" => path_pattern: Option<RawValues>,
    "queryStringConfig" => query_string: Option<RawQueryString>,
    "sourceIPConfig" => source_ip: Option<RawValues>,
} }

go_struct! { struct RawRewrite {
    "regex" => regex: String,
    "replace" => replace: String,
} }

go_struct! { struct RawRewrites {
    "rewrites" => rewrites: GoSlice<RawRewrite>,
} }

go_struct! { struct RawTransform {
    "type" => kind: String,
    "hostHeaderRewriteConfig" => host_header: Option<RawRewrites>,
    "urlRewriteConfig" => url: Option<RawRewrites>,
} }

/// One condition of `conditions.<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Hosts the rule matches, added to the Ingress rule's own host.
    HostHeader {
        values: Vec<String>,
        regex_values: Vec<String>,
    },
    PathPattern {
        values: Vec<String>,
        regex_values: Vec<String>,
    },
    HttpHeader {
        name: String,
        values: Vec<String>,
        regex_values: Vec<String>,
    },
    HttpRequestMethod {
        values: Vec<String>,
    },
    QueryString {
        values: Vec<(Option<String>, String)>,
    },
    SourceIp {
        values: Vec<String>,
    },
    /// A `field` the controller does not know: it validates nothing and drops the condition.
    Ignored {
        field: String,
    },
}

/// Every `host-header` value and regex value of `conditions` (the hosts a rule can steal).
pub fn condition_hosts(conditions: &[Condition]) -> (Vec<&str>, Vec<&str>) {
    let mut values = Vec::new();
    let mut regex = Vec::new();
    for c in conditions {
        if let Condition::HostHeader {
            values: v,
            regex_values: r,
        } = c
        {
            values.extend(v.iter().map(String::as_str));
            regex.extend(r.iter().map(String::as_str));
        }
    }
    (values, regex)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformKind {
    HostHeaderRewrite,
    UrlRewrite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub kind: TransformKind,
    /// `(regex, replace)` pairs.
    pub rewrites: Vec<(String, String)>,
}

fn strings(s: &GoSlice<String>) -> Vec<String> {
    s.items().to_vec()
}

fn one_of_values(what: &str, c: &RawValues) -> Result<(), Problem> {
    match (c.values.is_empty(), c.regex_values.is_empty()) {
        (true, true) => Err(Problem::build(format!(
            "invalid {what}: values or regexValues must be specified"
        ))),
        (false, false) => Err(Problem::build(format!(
            "invalid {what}: precisely one of values and regexValues can be specified"
        ))),
        _ => Ok(()),
    }
}

/// `conditions.<service>`: `buildConditions` (JSON list, `RuleCondition.Validate`).
pub fn parse_conditions(raw: &str) -> Result<Vec<Condition>, Problem> {
    let list: GoSlice<RawCondition> = unmarshal(raw).map_err(Problem::build)?;
    let mut out = Vec::new();
    let (mut methods, mut sources) = (0, 0);
    // RuleCondition.Validate runs on every condition before AWS sees any: build problems first.
    let mut later: Option<Problem> = None;
    for (i, c) in list.items().iter().enumerate() {
        let at = |p: Problem| Problem {
            problem: format!("conditions[{i}]: {}", p.problem),
            ..p
        };
        let need = |what: &str| at(Problem::build(format!("field {:?} needs {what}", c.field)));
        out.push(match c.field.as_str() {
            "host-header" => {
                let h = c
                    .host_header
                    .as_ref()
                    .ok_or_else(|| need("hostHeaderConfig"))?;
                one_of_values("hostHeaderConfig", h).map_err(at)?;
                Condition::HostHeader {
                    values: strings(&h.values),
                    regex_values: strings(&h.regex_values),
                }
            }
            "path-pattern" => {
                let p = c
                    .path_pattern
                    .as_ref()
                    .ok_or_else(|| need("pathPatternConfig"))?;
                one_of_values("pathPatternConfig", p).map_err(at)?;
                Condition::PathPattern {
                    values: strings(&p.values),
                    regex_values: strings(&p.regex_values),
                }
            }
            "http-header" => {
                let h = c
                    .http_header
                    .as_ref()
                    .ok_or_else(|| need("httpHeaderConfig"))?;
                let v = RawValues {
                    values: h.values.clone(),
                    regex_values: h.regex_values.clone(),
                };
                one_of_values("httpHeaderConfig", &v).map_err(at)?;
                if h.name.is_empty() {
                    later.get_or_insert(at(Problem::deploy(
                        "httpHeaderConfig.httpHeaderName is empty",
                    )));
                }
                Condition::HttpHeader {
                    name: h.name.clone(),
                    values: strings(&h.values),
                    regex_values: strings(&h.regex_values),
                }
            }
            "http-request-method" => {
                let m = c
                    .http_request_method
                    .as_ref()
                    .ok_or_else(|| need("httpRequestMethodConfig"))?;
                if m.values.is_empty() {
                    return Err(at(Problem::build(
                        "httpRequestMethodConfig.values cannot be empty",
                    )));
                }
                methods += 1;
                Condition::HttpRequestMethod {
                    values: strings(&m.values),
                }
            }
            "query-string" => {
                let q = c
                    .query_string
                    .as_ref()
                    .ok_or_else(|| need("queryStringConfig"))?;
                if q.values.is_empty() {
                    return Err(at(Problem::build(
                        "queryStringConfig.values cannot be empty",
                    )));
                }
                if q.values.items().iter().any(|p| p.value.is_empty()) {
                    return Err(at(Problem::build(
                        "queryStringConfig: a value cannot be empty",
                    )));
                }
                Condition::QueryString {
                    values: q
                        .values
                        .items()
                        .iter()
                        .map(|p| (p.key.clone(), p.value.clone()))
                        .collect(),
                }
            }
            "source-ip" => {
                let s = c.source_ip.as_ref().ok_or_else(|| need("sourceIPConfig"))?;
                if s.values.is_empty() {
                    return Err(at(Problem::build("sourceIPConfig.values cannot be empty")));
                }
                for v in s.values.items() {
                    if let Err(e) = parse_cidr(v) {
                        later.get_or_insert(at(Problem::deploy(format!("sourceIPConfig: {e}"))));
                    }
                }
                sources += 1;
                Condition::SourceIp {
                    values: strings(&s.values),
                }
            }
            other => Condition::Ignored {
                field: other.to_string(),
            },
        });
    }
    if let Some(p) = later {
        return Err(p);
    }
    if methods > 1 || sources > 1 {
        return Err(Problem::deploy(
            "AWS allows at most one http-request-method and one source-ip condition per rule",
        ));
    }
    Ok(out)
}

/// `transforms.<service>`: `buildTransforms` (JSON list, `Transform.Validate`).
pub fn parse_transforms(raw: &str) -> Result<Vec<Transform>, Problem> {
    let list: GoSlice<RawTransform> = unmarshal(raw).map_err(Problem::build)?;
    let mut out = Vec::new();
    for (i, t) in list.items().iter().enumerate() {
        let (kind, cfg, name) = match t.kind.as_str() {
            "host-header-rewrite" => (
                TransformKind::HostHeaderRewrite,
                &t.host_header,
                "hostHeaderRewriteConfig",
            ),
            "url-rewrite" => (TransformKind::UrlRewrite, &t.url, "urlRewriteConfig"),
            other => {
                return Err(Problem::build(format!(
                    "transforms[{i}]: unknown transform type {other:?}: use host-header-rewrite or url-rewrite"
                )));
            }
        };
        let Some(cfg) = cfg else {
            return Err(Problem::build(format!("transforms[{i}]: missing {name}")));
        };
        if cfg.rewrites.is_empty() {
            return Err(Problem::build(format!(
                "transforms[{i}]: {name}.rewrites cannot be empty"
            )));
        }
        out.push(Transform {
            kind,
            rewrites: cfg
                .rewrites
                .items()
                .iter()
                .map(|r| (r.regex.clone(), r.replace.clone()))
                .collect(),
        });
    }
    Ok(out)
}
