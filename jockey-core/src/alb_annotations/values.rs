//! The structured (JSON and `key=value`) annotations other than routing: `listen-ports`,
//! `mutual-authentication`, `jwt-validation`, `auth-idp-*`, `frontend-nlb-listener-port-mapping`,
//! `minimum-load-balancer-capacity`, decoded and validated as the controller does
//! (`model_build_listener.go`, `enhanced_backend_builder.go`, `config_types.go`,
//! `model_build_frontend_nlb.go`, `model_build_load_balancer_capacity_reservation.go`).

use super::Problem;
use super::gojson::{GoMap, GoSlice, go_struct, unmarshal};
use super::scalar::{parse_int, parse_map};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenPort {
    pub port: u16,
    pub protocol: Protocol,
}

/// `listen-ports` (`computeIngressListenPorts`): a JSON list of `{"HTTP"|"HTTPS": port}`
/// objects. Returns the Ingress's listeners sorted by port. A later entry overrides an earlier
/// one for the same port; when ONE entry names a port under both protocols the controller picks
/// one at random (Go map order), so both are returned and the policy sees the ambiguity.
pub fn parse_listen_ports(raw: &str) -> Result<Vec<ListenPort>, Problem> {
    let entries: GoSlice<GoMap<i32>> = unmarshal(raw).map_err(Problem::build)?;
    if entries.is_empty() {
        return Err(Problem::build(
            "the list is empty: give at least one {\"HTTP\": 80}",
        ));
    }
    let mut by_port: Vec<(u16, Vec<Protocol>)> = Vec::new();
    for entry in entries.items() {
        let mut this: Vec<(u16, Vec<Protocol>)> = Vec::new();
        for (protocol, port) in entry.entries() {
            let port = match u16::try_from(*port) {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(Problem::build(format!(
                        "listen port must be within [1, 65535]: {port}"
                    )));
                }
            };
            let protocol = match protocol.as_str() {
                "HTTP" => Protocol::Http,
                "HTTPS" => Protocol::Https,
                other => {
                    return Err(Problem::build(format!(
                        "listen protocol must be HTTP or HTTPS (upper case): {other:?}"
                    )));
                }
            };
            match this.iter_mut().find(|(p, _)| *p == port) {
                Some((_, protocols)) => protocols.push(protocol),
                None => this.push((port, vec![protocol])),
            }
        }
        for (port, protocols) in this {
            match by_port.iter_mut().find(|(p, _)| *p == port) {
                Some(slot) => slot.1 = protocols,
                None => by_port.push((port, protocols)),
            }
        }
    }
    let mut out: Vec<ListenPort> = by_port
        .into_iter()
        .flat_map(|(port, protocols)| {
            protocols
                .into_iter()
                .map(move |protocol| ListenPort { port, protocol })
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

go_struct! { struct RawMtls {
    "port" => port: i32,
    "mode" => mode: String,
    "trustStore" => trust_store: Option<String>,
    "ignoreClientCertificateExpiry" => ignore_expiry: Option<bool>,
    "advertiseTrustStoreCaNames" => advertise_ca_names: Option<String>,
} }

/// One listener's mTLS setting from `mutual-authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualAuthentication {
    pub port: u16,
    /// `off`, `passthrough` or `verify`.
    pub mode: String,
    /// A trust store ARN, or a name the controller resolves through the ELBv2 API.
    pub trust_store: Option<String>,
    pub ignore_client_certificate_expiry: Option<bool>,
    pub advertise_trust_store_ca_names: Option<String>,
}

/// `mutual-authentication` (`computeIngressMutualAuthentication`, `validateMutualAuthenticationConfig`).
pub fn parse_mutual_authentication(raw: &str) -> Result<Vec<MutualAuthentication>, Problem> {
    let entries: GoSlice<RawMtls> = unmarshal(raw).map_err(Problem::build)?;
    if entries.is_empty() {
        return Err(Problem::build("the list is empty"));
    }
    let mut out: Vec<MutualAuthentication> = Vec::new();
    for e in entries.items() {
        let port = e.port;
        let Some(port_u16) = u16::try_from(port).ok().filter(|p| *p != 0) else {
            return Err(Problem::build(format!(
                "listen port must be within [1, 65535]: {port}"
            )));
        };
        let mode = e.mode.as_str();
        let store = e.trust_store.as_deref().unwrap_or("");
        let off_or_pass = matches!(mode, "off" | "passthrough");
        if mode.is_empty() {
            return Err(Problem::build(format!(
                "mode cannot be empty for port {port}"
            )));
        }
        if !(off_or_pass || mode == "verify") {
            return Err(Problem::build(format!(
                "mode must be off, passthrough or verify for port {port}: {mode:?}"
            )));
        }
        if mode == "verify" && store.is_empty() {
            return Err(Problem::build(format!(
                "trustStore is required when mode is verify for port {port}"
            )));
        }
        if off_or_pass && !store.is_empty() {
            return Err(Problem::build(format!(
                "mode {mode} does not support trustStore for port {port}"
            )));
        }
        if off_or_pass && e.ignore_expiry.is_some() {
            return Err(Problem::build(format!(
                "mode {mode} does not support ignoreClientCertificateExpiry for port {port}"
            )));
        }
        if let Some(adv) = &e.advertise_ca_names {
            if mode != "verify" {
                return Err(Problem::build(format!(
                    "mode {mode} does not support advertiseTrustStoreCaNames for port {port}"
                )));
            }
            if adv != "on" && adv != "off" {
                return Err(Problem::build(format!(
                    "advertiseTrustStoreCaNames must be \"on\" or \"off\" for port {port}: {adv:?}"
                )));
            }
        }
        let m = MutualAuthentication {
            port: port_u16,
            mode: e.mode.clone(),
            trust_store: (!store.is_empty()).then(|| store.to_string()),
            ignore_client_certificate_expiry: if mode == "verify" {
                Some(e.ignore_expiry.unwrap_or(false))
            } else {
                e.ignore_expiry
            },
            advertise_trust_store_ca_names: e.advertise_ca_names.clone(),
        };
        match out.iter_mut().find(|x| x.port == m.port) {
            Some(slot) => *slot = m,
            None => out.push(m),
        }
    }
    Ok(out)
}

go_struct! { struct RawClaim {
    "format" => format: String,
    "name" => name: String,
    "values" => values: GoSlice<String>,
} }

go_struct! { struct RawJwt {
    "jwksEndpoint" => jwks_endpoint: String,
    "issuer" => issuer: String,
    "additionalClaims" => claims: GoSlice<RawClaim>,
} }

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtValidation {
    pub jwks_endpoint: String,
    pub issuer: String,
    /// `(format, name, values)`.
    pub additional_claims: Vec<(String, String, Vec<String>)>,
}

/// `jwt-validation` (`buildJwtValidationConfig`).
pub fn parse_jwt_validation(raw: &str) -> Result<JwtValidation, Problem> {
    let j: RawJwt = unmarshal(raw).map_err(Problem::build)?;
    if j.jwks_endpoint.is_empty() {
        return Err(Problem::build("jwksEndpoint is a required field"));
    }
    if j.issuer.is_empty() {
        return Err(Problem::build("issuer is a required field"));
    }
    for c in j.claims.items() {
        if c.format.is_empty() {
            return Err(Problem::build(
                "format is a required field of additionalClaims",
            ));
        }
        if c.name.is_empty() {
            return Err(Problem::build(
                "name is a required field of additionalClaims",
            ));
        }
        if c.values.is_empty() {
            return Err(Problem::build(
                "values must not be empty in additionalClaims",
            ));
        }
    }
    if let Some(c) = j.claims.items().iter().find(|c| {
        !matches!(
            c.format.as_str(),
            "single-string" | "string-array" | "space-separated-values"
        )
    }) {
        return Err(Problem::deploy(format!(
            "additionalClaims format {:?}: AWS accepts single-string, string-array or space-separated-values",
            c.format
        )));
    }
    Ok(JwtValidation {
        jwks_endpoint: j.jwks_endpoint,
        issuer: j.issuer,
        additional_claims: j
            .claims
            .items()
            .iter()
            .map(|c| (c.format.clone(), c.name.clone(), c.values.items().to_vec()))
            .collect(),
    })
}

go_struct! {
    /// `auth-idp-cognito` (`AuthIDPConfigCognito`): decoded, not validated by the controller.
    pub struct CognitoIdp {
        "userPoolARN" => user_pool_arn: String,
        "userPoolClientID" => user_pool_client_id: String,
        "userPoolDomain" => user_pool_domain: String,
        "authenticationRequestExtraParams" => extra_params: GoMap<String>,
    }
}

go_struct! {
    /// `auth-idp-oidc` (`AuthIDPConfigOIDC`): decoded, not validated by the controller; the
    /// client id and secret come from the Secret `secretName` in the Ingress's namespace.
    pub struct OidcIdp {
        "issuer" => issuer: String,
        "authorizationEndpoint" => authorization_endpoint: String,
        "tokenEndpoint" => token_endpoint: String,
        "userInfoEndpoint" => user_info_endpoint: String,
        "secretName" => secret_name: String,
        "authenticationRequestExtraParams" => extra_params: GoMap<String>,
    }
}

pub fn parse_cognito(raw: &str) -> Result<CognitoIdp, Problem> {
    unmarshal(raw).map_err(Problem::build)
}

pub fn parse_oidc(raw: &str) -> Result<OidcIdp, Problem> {
    unmarshal(raw).map_err(Problem::build)
}

/// `frontend-nlb-listener-port-mapping` (`parseFrontendNlbListenerPortMapping`): `nlbPort=albPort`
/// pairs, both 32-bit integers. Returns `(nlb port, alb port)` pairs.
pub fn parse_port_mapping(raw: &str) -> Result<Vec<(i32, i32)>, Problem> {
    let pairs = parse_map(raw).map_err(Problem::build)?;
    let mut out = Vec::new();
    for (nlb, alb) in &pairs {
        let Some(n) = parse_int(nlb, 32) else {
            return Err(Problem::build(format!(
                "invalid NLB listener port: {nlb:?}"
            )));
        };
        let Some(a) = parse_int(alb, 32) else {
            return Err(Problem::build(format!(
                "invalid ALB listener port: {alb:?}"
            )));
        };
        out.push((n as i32, a as i32));
    }
    if let Some((n, _)) = out.iter().find(|(n, _)| !(1..=65535).contains(n)) {
        return Err(Problem::deploy(format!(
            "NLB listener port {n} is outside 1..65535"
        )));
    }
    Ok(out)
}

/// `minimum-load-balancer-capacity` (`buildLoadBalancerMinimumCapacity`): only
/// `CapacityUnits=<int32>`.
pub fn parse_capacity(raw: &str) -> Result<Vec<(String, String)>, Problem> {
    let pairs = parse_map(raw).map_err(Problem::build)?;
    for (k, v) in &pairs {
        if k != "CapacityUnits" {
            return Err(Problem::build(format!(
                "invalid key {k:?}: the only key is CapacityUnits"
            )));
        }
        if parse_int(v, 32).is_none() {
            return Err(Problem::build(format!("invalid CapacityUnits value {v:?}")));
        }
    }
    Ok(pairs)
}
