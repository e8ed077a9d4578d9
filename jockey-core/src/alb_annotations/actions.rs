//! `actions.<name>`: decoded as the controller decodes it (`pkg/ingress/config_types.go`,
//! `enhanced_backend_builder.go:201-267`), validated by the same rules, normalised the same way,
//! and returned as a typed value that says where traffic can go.

use super::Problem;
use super::gojson::{GoSlice, IntOrString, go_struct, unmarshal};
use super::scalar::{intstr_parse, is_port_name};

// The controller's JSON shapes (config_types.go), field names as in its `json:` tags.

go_struct! { struct RawFixedResponse {
    "contentType" => content_type: Option<String>,
    "messageBody" => message_body: Option<String>,
    "statusCode" => status_code: String,
} }

go_struct! { struct RawRedirect {
    "host" => host: Option<String>,
    "path" => path: Option<String>,
    "port" => port: Option<String>,
    "protocol" => protocol: Option<String>,
    "query" => query: Option<String>,
    "statusCode" => status_code: String,
} }

go_struct! { struct RawTargetGroupTuple {
    "targetGroupARN" => target_group_arn: Option<String>,
    "targetGroupName" => target_group_name: Option<String>,
    "serviceName" => service_name: Option<String>,
    "servicePort" => service_port: Option<IntOrString>,
    "weight" => weight: Option<i32>,
} }

go_struct! { struct RawStickiness {
    "enabled" => enabled: Option<bool>,
    "durationSeconds" => duration_seconds: Option<i32>,
} }

go_struct! { struct RawForward {
    "targetGroups" => target_groups: GoSlice<RawTargetGroupTuple>,
    "targetGroupStickinessConfig" => stickiness: Option<RawStickiness>,
} }

go_struct! { struct RawAction {
    "type" => kind: String,
    "targetGroupARN" => target_group_arn: Option<String>,
    "targetGroupName" => target_group_name: Option<String>,
    "fixedResponseConfig" => fixed_response: Option<RawFixedResponse>,
    "redirectConfig" => redirect: Option<RawRedirect>,
    "forwardConfig" => forward: Option<RawForward>,
} }

/// What an `actions.<name>` annotation does, after the controller's normalisation (the
/// simplified `targetGroupARN`/`targetGroupName` form becomes a one-target forward, string
/// service ports that are numbers become numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    FixedResponse(FixedResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub targets: Vec<Target>,
    pub stickiness: Option<(Option<bool>, Option<i32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub to: TargetRef,
    pub weight: Option<i32>,
}

/// Where a forward sends traffic. A service is looked up in the Ingress's own namespace; a
/// target group ARN or name can be ANY target group of the AWS account (another tenant's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    Service { name: String, port: ServicePort },
    TargetGroupArn(String),
    TargetGroupName(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServicePort {
    Number(i32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub host: Option<String>,
    pub path: Option<String>,
    pub port: Option<String>,
    pub protocol: Option<String>,
    pub query: Option<String>,
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    pub content_type: Option<String>,
    pub message_body: Option<String>,
    pub status_code: String,
}

impl Action {
    /// `forward`, `redirect` or `fixed-response`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Forward(_) => "forward",
            Action::Redirect(_) => "redirect",
            Action::FixedResponse(_) => "fixed-response",
        }
    }

    /// Every target of a forward (empty for other kinds).
    pub fn targets(&self) -> &[Target] {
        match self {
            Action::Forward(f) => &f.targets,
            _ => &[],
        }
    }
}
pub fn parse_action(raw: &str) -> Result<Action, Problem> {
    let a: RawAction = unmarshal(raw).map_err(Problem::build)?;
    match a.kind.as_str() {
        "fixed-response" => {
            let Some(f) = a.fixed_response else {
                return Err(Problem::build(
                    "type fixed-response needs fixedResponseConfig",
                ));
            };
            if f.status_code.is_empty() {
                return Err(Problem::build("fixedResponseConfig.statusCode is required"));
            }
            check_fixed_response(&f)?;
            Ok(Action::FixedResponse(FixedResponse {
                content_type: f.content_type,
                message_body: f.message_body,
                status_code: f.status_code,
            }))
        }
        "redirect" => {
            let Some(r) = a.redirect else {
                return Err(Problem::build("type redirect needs redirectConfig"));
            };
            if r.status_code.is_empty() {
                return Err(Problem::build("redirectConfig.statusCode is required"));
            }
            check_redirect(&r)?;
            Ok(Action::Redirect(Redirect {
                host: r.host,
                path: r.path,
                port: r.port,
                protocol: r.protocol,
                query: r.query,
                status_code: r.status_code,
            }))
        }
        "forward" => parse_forward(a),
        other => Err(Problem::build(format!(
            "unknown action type {other:?}: use forward, redirect or fixed-response"
        ))),
    }
}

fn parse_forward(a: RawAction) -> Result<Action, Problem> {
    let simplified = a.target_group_arn.is_some() || a.target_group_name.is_some();
    let (tuples, stickiness) = match (simplified, a.forward) {
        (false, None) => {
            return Err(Problem::build(
                "type forward needs forwardConfig or targetGroupARN/targetGroupName",
            ));
        }
        (true, Some(_)) => {
            return Err(Problem::build(
                "give either forwardConfig or targetGroupARN/targetGroupName, not both",
            ));
        }
        // normalizeSimplifiedSchemaForwardAction: one tuple with the ARN/name, no weight.
        (true, None) => (
            vec![RawTargetGroupTuple {
                target_group_arn: a.target_group_arn,
                target_group_name: a.target_group_name,
                ..Default::default()
            }],
            None,
        ),
        (false, Some(f)) => (f.target_groups.items().to_vec(), f.stickiness),
    };
    // ForwardActionConfig.validate: every tuple first, then the weights.
    for (i, t) in tuples.iter().enumerate() {
        let by_tg = t.target_group_arn.is_some() || t.target_group_name.is_some();
        match (&t.service_name, by_tg) {
            (None, false) => {
                return Err(Problem::build(format!(
                    "targetGroups[{i}]: missing serviceName or targetGroupARN/targetGroupName"
                )));
            }
            (Some(_), true) => {
                return Err(Problem::build(format!(
                    "targetGroups[{i}]: give either serviceName or targetGroupARN/targetGroupName"
                )));
            }
            (Some(_), false) if t.service_port.is_none() => {
                return Err(Problem::build(format!(
                    "targetGroups[{i}]: missing servicePort"
                )));
            }
            _ => {}
        }
    }
    if tuples.len() > 1 && tuples.iter().any(|t| t.weight.is_none()) {
        return Err(Problem::build(
            "weight must be set on every target group when forwarding to several",
        ));
    }
    let mut targets = Vec::new();
    for (i, t) in tuples.iter().enumerate() {
        let to = match (&t.service_name, &t.target_group_arn, &t.target_group_name) {
            (Some(name), _, _) => {
                // normalizeServicePortForBackwardsCompatibility: intstr.Parse(port.String()).
                let text = match &t.service_port {
                    Some(IntOrString::Int(n)) => n.to_string(),
                    Some(IntOrString::Str(s)) => s.clone(),
                    None => String::new(),
                };
                let port = match intstr_parse(&text) {
                    Ok(n) if (1..=65535).contains(&n) => ServicePort::Number(n),
                    Ok(n) => {
                        return Err(Problem::build(format!(
                            "targetGroups[{i}]: servicePort {n} cannot match any Service port"
                        )));
                    }
                    Err(()) if is_port_name(&text) => ServicePort::Name(text),
                    Err(()) => {
                        return Err(Problem::build(format!(
                            "targetGroups[{i}]: servicePort {text:?} is neither a port number nor a valid port name, so it cannot match any Service port"
                        )));
                    }
                };
                TargetRef::Service {
                    name: name.clone(),
                    port,
                }
            }
            (None, Some(arn), _) => TargetRef::TargetGroupArn(arn.clone()),
            (None, None, name) => {
                let name = name.clone().unwrap_or_default();
                if name.is_empty() {
                    return Err(Problem::build(format!(
                        "targetGroups[{i}]: an empty targetGroupName resolves to no target group"
                    )));
                }
                TargetRef::TargetGroupName(name)
            }
        };
        targets.push(Target {
            to,
            weight: t.weight,
        });
    }
    // What the model build accepts but the ELBv2 API refuses.
    if targets.is_empty() {
        return Err(Problem::deploy("forwardConfig.targetGroups is empty"));
    }
    if targets.len() > 5 {
        return Err(Problem::deploy(format!(
            "{} target groups in one forward: AWS allows at most 5",
            targets.len()
        )));
    }
    for (i, t) in targets.iter().enumerate() {
        if matches!(&t.to, TargetRef::TargetGroupArn(arn) if arn.is_empty()) {
            return Err(Problem::deploy(format!(
                "targetGroups[{i}]: empty targetGroupARN"
            )));
        }
        if let Some(w) = t.weight
            && !(0..=999).contains(&w)
        {
            return Err(Problem::deploy(format!(
                "targetGroups[{i}]: weight {w} is outside 0..999"
            )));
        }
    }
    Ok(Action::Forward(Forward {
        targets,
        stickiness: stickiness.map(|s| (s.enabled, s.duration_seconds)),
    }))
}

fn check_redirect(r: &RawRedirect) -> Result<(), Problem> {
    if !matches!(r.status_code.as_str(), "HTTP_301" | "HTTP_302") {
        return Err(Problem::deploy(format!(
            "redirectConfig.statusCode {:?}: AWS accepts HTTP_301 or HTTP_302",
            r.status_code
        )));
    }
    if let Some(p) = &r.protocol
        && !matches!(p.as_str(), "HTTP" | "HTTPS" | "#{protocol}")
    {
        return Err(Problem::deploy(format!(
            "redirectConfig.protocol {p:?}: AWS accepts HTTP, HTTPS or #{{protocol}}"
        )));
    }
    if let Some(p) = &r.port
        && p != "#{port}"
        && !p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    {
        return Err(Problem::deploy(format!(
            "redirectConfig.port {p:?}: AWS accepts 1..65535 or #{{port}}"
        )));
    }
    Ok(())
}

fn check_fixed_response(f: &RawFixedResponse) -> Result<(), Problem> {
    let code = f.status_code.as_bytes();
    if !(code.len() == 3
        && matches!(code[0], b'2' | b'4' | b'5')
        && code[1..].iter().all(u8::is_ascii_digit))
    {
        return Err(Problem::deploy(format!(
            "fixedResponseConfig.statusCode {:?}: AWS accepts 2XX, 4XX or 5XX",
            f.status_code
        )));
    }
    if let Some(ct) = &f.content_type
        && !matches!(
            ct.as_str(),
            "text/plain" | "text/css" | "text/html" | "application/javascript" | "application/json"
        )
    {
        return Err(Problem::deploy(format!(
            "fixedResponseConfig.contentType {ct:?}: AWS accepts text/plain, text/css, text/html, application/javascript or application/json"
        )));
    }
    if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
        return Err(Problem::deploy(
            "fixedResponseConfig.messageBody is longer than 1024 bytes",
        ));
    }
    Ok(())
}
