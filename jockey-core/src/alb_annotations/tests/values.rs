//! listen-ports, mutual-authentication, jwt-validation, auth-idp-*, frontend NLB port mapping.

use super::*;

fn ports(value: &str) -> Vec<(u16, &'static str)> {
    match ok("listen-ports", value) {
        Parsed::ListenPorts(p) => p.iter().map(|l| (l.port, l.protocol.as_str())).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listen_ports_accepted() {
    assert_eq!(
        ports(r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
        [(80, "HTTP"), (443, "HTTPS")]
    );
    assert_eq!(
        ports(r#"[{"HTTPS": 443, "HTTP": 8080}]"#),
        [(443, "HTTPS"), (8080, "HTTP")]
    );
    assert_eq!(
        ports(r#"[{"HTTP": 65535}, {"HTTP": 1}]"#),
        [(1, "HTTP"), (65535, "HTTP")]
    );
    // A later entry overrides an earlier one for the same port.
    assert_eq!(
        ports(r#"[{"HTTP": 443}, {"HTTPS": 443}]"#),
        [(443, "HTTPS")]
    );
    assert_eq!(ports(r#"[{"HTTP": 80, "HTTP": 81}]"#), [(81, "HTTP")]);
    // One entry with both protocols on one port: Go's map order decides, both are reported.
    assert_eq!(
        ports(r#"[{"HTTP": 80, "HTTPS": 80}]"#),
        [(80, "HTTP"), (80, "HTTPS")]
    );
    // An entry without ports (or null) adds nothing; the controller accepts it.
    assert_eq!(ports("[{}]"), []);
    assert_eq!(ports(r#"[null, {"HTTP": 80}]"#), [(80, "HTTP")]);
}

#[test]
fn listen_ports_refused() {
    for bad in [
        "[]",
        "null",
        "",
        r#"{"HTTP": 80}"#,
        r#"[{"HTTP": 0}]"#,
        r#"[{"HTTP": 65536}]"#,
        r#"[{"HTTP": -80}]"#,
        r#"[{"HTTP": null}]"#,
        r#"[{"HTTP": "80"}]"#,
        r#"[{"HTTP": 80.0}]"#,
        r#"[{"HTTP": 4294967376}]"#,
        r#"[{"http": 80}]"#,
        r#"[{"TCP": 80}]"#,
        r#"[{"HTTP": 80}"#,
        r#"[{"HTTP": 80}, 443]"#,
    ] {
        err("listen-ports", bad, Failure::Build);
    }
}

fn mtls(value: &str) -> Vec<MutualAuthentication> {
    match ok("mutual-authentication", value) {
        Parsed::MutualAuthentication(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn mutual_authentication_accepted() {
    // model_build_listener_test.go annotations.
    let m = mtls(r#"[{"port":443,"mode":"off"}, {"port":80,"mode":"passthrough"}]"#);
    assert_eq!(
        m.iter()
            .map(|m| (m.port, m.mode.as_str()))
            .collect::<Vec<_>>(),
        [(443, "off"), (80, "passthrough")]
    );
    let m = mtls(
        r#"[{"port":443,"mode":"off"}, {"port":80,"mode":"verify", "advertiseTrustStoreCaNames": "on", "trustStore": "arn:aws:elasticloadbalancing:trustStoreArn"}]"#,
    );
    assert_eq!(
        m[1].trust_store.as_deref(),
        Some("arn:aws:elasticloadbalancing:trustStoreArn")
    );
    // verify without ignoreClientCertificateExpiry gets false (model_build_listener.go:376).
    assert_eq!(m[1].ignore_client_certificate_expiry, Some(false));
    let m = mtls(
        r#"[{"port":800,"mode":"verify","trustStore":"truststore","ignoreClientCertificateExpiry":true,"advertiseTrustStoreCaNames":"off"}]"#,
    );
    assert_eq!(m[0].ignore_client_certificate_expiry, Some(true));
    // A later entry for the same port wins.
    assert_eq!(
        mtls(r#"[{"port":443,"mode":"off"},{"port":443,"mode":"passthrough"}]"#).len(),
        1
    );
}

#[test]
fn mutual_authentication_refused() {
    // Test_validateMutualAuthenticationConfig cases, and the list itself.
    for bad in [
        "[]",
        "null",
        r#"[{"port":800}]"#,
        r#"[{"port":800,"mode":"foo"}]"#,
        r#"[{"port":800000,"mode":"off"}]"#,
        r#"[{"mode":"off"}]"#,
        r#"[{"port":800,"mode":"verify"}]"#,
        r#"[{"port":800,"mode":"verify","trustStore":""}]"#,
        r#"[{"port":800,"mode":"off","trustStore":"truststore"}]"#,
        r#"[{"port":800,"mode":"off","ignoreClientCertificateExpiry":true}]"#,
        r#"[{"port":800,"mode":"passthrough","ignoreClientCertificateExpiry":false}]"#,
        r#"[{"port":800,"mode":"off","advertiseTrustStoreCaNames":"on"}]"#,
        r#"[{"port":800,"mode":"passthrough","advertiseTrustStoreCaNames":"on"}]"#,
        r#"[{"port":800,"mode":"verify","trustStore":"truststore","advertiseTrustStoreCaNames":"foo"}]"#,
        r#"[{"port":"443","mode":"off"}]"#,
        r#"{"port":443,"mode":"off"}"#,
    ] {
        err("mutual-authentication", bad, Failure::Build);
    }
}

#[test]
fn jwt_validation() {
    let full = r#"{"jwksEndpoint":"https://issuer.example.com/.well-known/jwks.json","issuer":"https://issuer.com","additionalClaims":[{"format":"string-array","name":"scope","values":["read:api","write:api"]},{"format":"single-string","name":"iat","values":["12456"]},{"format":"space-separated-values","name":"aud","values":["https://example.com","https://another-site.com"]}]}"#;
    match ok("jwt-validation", full) {
        Parsed::JwtValidation(j) => {
            assert_eq!(j.issuer, "https://issuer.com");
            assert_eq!(j.additional_claims.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    ok(
        "jwt-validation",
        r#"{"jwksEndpoint":"https://issuer.example.com/.well-known/jwks.json","issuer":"https://issuer.com"}"#,
    );
    for bad in [
        r#"{"jwksEndpoint":"https://issuer.example.com/.well-known/jwks.json","issuer":"https://issuer.com""#,
        r#"{"jwksEndpoint":"https://issuer.example.com/.well-known/jwks.json"}"#,
        r#"{"issuer":"https://issuer.com"}"#,
        "null",
        r#"{"jwksEndpoint":"j","issuer":"i","additionalClaims":[{"name":"scope","values":["read:api"]}]}"#,
        r#"{"jwksEndpoint":"j","issuer":"i","additionalClaims":[{"format":"single-string","values":["x"]}]}"#,
        r#"{"jwksEndpoint":"j","issuer":"i","additionalClaims":[{"format":"single-string","name":"n","values":[]}]}"#,
    ] {
        err("jwt-validation", bad, Failure::Build);
    }
    err(
        "jwt-validation",
        r#"{"jwksEndpoint":"j","issuer":"i","additionalClaims":[{"format":"csv","name":"n","values":["x"]}]}"#,
        Failure::Deploy,
    );
}

#[test]
fn identity_providers() {
    match ok(
        "auth-idp-cognito",
        r#"{"userPoolARN":"arn:aws:cognito-idp:us-west-2:xxx:userpool/xxx","userPoolClientID":"my-clientID","userPoolDomain":"my-domain","authenticationRequestExtraParams":{"display":"page","prompt":"login"}}"#,
    ) {
        Parsed::CognitoIdp(c) => {
            assert_eq!(c.user_pool_client_id, "my-clientID");
            assert_eq!(c.extra_params.entries().len(), 2);
        }
        other => panic!("{other:?}"),
    }
    match ok(
        "auth-idp-oidc",
        r#"{"issuer":"https://example.com","authorizationEndpoint":"https://authorization.example.com","tokenEndpoint":"https://token.example.com","userInfoEndpoint":"https://userinfo.example.com","secretName":"my-k8s-secret"}"#,
    ) {
        Parsed::OidcIdp(o) => assert_eq!(o.secret_name, "my-k8s-secret"),
        other => panic!("{other:?}"),
    }
    // Decoded without validation: null or an empty object pass the build.
    ok("auth-idp-oidc", "null");
    ok("auth-idp-cognito", "{}");
    err("auth-idp-oidc", r#"{"secretName": 1}"#, Failure::Build);
    err(
        "auth-idp-cognito",
        r#"{"authenticationRequestExtraParams":{"a":1}}"#,
        Failure::Build,
    );
    err("auth-idp-cognito", "{", Failure::Build);
    let k = known(Object::Service, "auth-idp-oidc");
    assert_eq!(k.parse("[]").map_err(|e| e.failure), Err(Failure::Build));
}

#[test]
fn frontend_nlb_port_mapping() {
    assert_eq!(
        ok("frontend-nlb-listener-port-mapping", "80=443, 8443=443"),
        Parsed::PortMapping(vec![(80, 443), (8443, 443)])
    );
    for bad in ["http=443", "80=https", "80", "80=443,x", "2147483648=1"] {
        err("frontend-nlb-listener-port-mapping", bad, Failure::Build);
    }
    err(
        "frontend-nlb-listener-port-mapping",
        "0=443",
        Failure::Deploy,
    );
}
