//! Agreement with the controller's own code on 1001 recorded values.
//!
//! `go_verdicts.tsv` was produced by feeding mutated annotation values (keys in other cases,
//! repeated keys, nulls, wrong types, broken syntax, odd numbers) to the controller's
//! `pkg/ingress/config_types.go` and `pkg/annotations/parser.go` (v3.5.0) under Go 1.26 with
//! apimachinery v0.36.2: its `json.Unmarshal` + `Validate` + the normalisation of
//! `enhanced_backend_builder.go`, `computeIngressListenPorts`, `validateMutualAuthenticationConfig`,
//! `buildJwtValidationConfig` and the parser's map/bool/int32 functions. Each line holds the
//! verdict: `err`, or `ok` followed by the normalised action or conditions.

use super::super::catalog::Kind;
use super::super::gojson::unmarshal;
use super::super::parse_kind;
use super::*;

const RECORDED: &str = include_str!("go_verdicts.tsv");

fn kind(name: &str) -> Kind {
    match name {
        "action" => Kind::Action,
        "conditions" => Kind::Conditions,
        "transforms" => Kind::Transforms,
        "listenports" => Kind::ListenPorts,
        "mtls" => Kind::MutualAuthentication,
        "jwt" => Kind::JwtValidation,
        "map" => Kind::Map,
        "bool" => Kind::Bool,
        "int32" => Kind::Int32,
        other => panic!("unknown kind {other}"),
    }
}

/// The same text the Go side printed for an accepted value.
fn describe(p: &Parsed) -> String {
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(" "))
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match p {
        Parsed::Action(Action::Forward(f)) => {
            let mut d = "forward".to_string();
            for t in &f.targets {
                let w = t.weight.map_or_else(|| "-".into(), |w| w.to_string());
                d += &match &t.to {
                    TargetRef::TargetGroupArn(a) => format!(" arn:{a}/{w}"),
                    TargetRef::TargetGroupName(n) => format!(" name:{n}/{w}"),
                    TargetRef::Service { name, port } => match port {
                        ServicePort::Number(n) => format!(" svc:{name}:{n}/{w}"),
                        ServicePort::Name(n) => format!(" svc:{name}:{n}/{w}"),
                    },
                };
            }
            d
        }
        Parsed::Action(Action::Redirect(r)) => format!(
            "redirect {}|{}|{}|{}|{}|{}",
            opt(&r.host),
            opt(&r.path),
            opt(&r.port),
            opt(&r.protocol),
            opt(&r.query),
            r.status_code
        ),
        Parsed::Action(Action::FixedResponse(f)) => format!(
            "fixed-response {}|{}|{}",
            opt(&f.content_type),
            opt(&f.message_body),
            f.status_code
        ),
        Parsed::Conditions(cs) => cs
            .iter()
            .map(|c| match c {
                Condition::HostHeader {
                    values,
                    regex_values,
                } => format!(" host{}{}", list(values), list(regex_values)),
                Condition::PathPattern {
                    values,
                    regex_values,
                } => format!(" path{}{}", list(values), list(regex_values)),
                Condition::HttpHeader {
                    name,
                    values,
                    regex_values,
                } => format!(" header{name:?}{}{}", list(values), list(regex_values)),
                _ => String::new(),
            })
            .collect(),
        _ => String::new(),
    }
}

#[test]
fn agrees_with_the_controller_on_recorded_values() {
    let mut checked = 0;
    for line in RECORDED.lines().filter(|l| !l.starts_with('#')) {
        let mut cols = line.splitn(3, '\t');
        let (name, go, encoded) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        let value: String = unmarshal(encoded).unwrap();
        let ours = parse_kind(kind(name), &value);
        match (go.strip_prefix("ok"), ours) {
            (Some(want), Ok(p)) => assert_eq!(describe(&p), want, "{name} {value}"),
            // Accepted by the build, refused by AWS later: still the controller's "ok".
            (Some(_), Err(p)) if p.failure == Failure::Deploy => {}
            // Accepted by the build, but the port can never match: refused here on purpose.
            (Some(_), Err(p)) if p.problem.contains("cannot match any Service port") => {}
            (Some(_), Err(p)) => panic!("{name} {value}: the controller accepts it, we say {p:?}"),
            (None, Ok(p)) => panic!("{name} {value}: the controller refuses it, we parse {p:?}"),
            (None, Err(p)) => assert_eq!(p.failure, Failure::Build, "{name} {value}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 1001);
}
