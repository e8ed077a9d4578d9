//! The parser.go rules (bool, int, list, map) and the scalar annotations built on them.

use super::super::scalar::{
    intstr_parse, is_port_name, parse_bool, parse_cidr, parse_int, parse_map, split_list,
};
use super::*;

fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn booleans_are_go_strconv_parse_bool() {
    for t in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(parse_bool(t), Some(true), "{t}");
    }
    for f in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(parse_bool(f), Some(false), "{f}");
    }
    // parser_test.go "Invalid": FaLsE.
    for bad in ["FaLsE", "yes", "on", "", " true", "true ", "2"] {
        assert_eq!(parse_bool(bad), None, "{bad:?}");
        err("shield-advanced-protection", bad, Failure::Build);
        err("use-regex-path-match", bad, Failure::Build);
    }
    assert_eq!(ok("enable-frontend-nlb", "True"), Parsed::Bool(true));
}

#[test]
fn create_acm_cert_ignores_its_parse_error() {
    // model_builder.go:322 discards the error: an invalid value is simply false.
    assert_eq!(ok("create-acm-cert", "true"), Parsed::Bool(true));
    assert_eq!(ok("create-acm-cert", "yes"), Parsed::Bool(false));
}

#[test]
fn integers_are_go_strconv_parse_int() {
    assert_eq!(parse_int("101", 32), Some(101));
    assert_eq!(parse_int("+5", 32), Some(5));
    assert_eq!(parse_int("-5", 32), Some(-5));
    assert_eq!(parse_int("007", 32), Some(7));
    assert_eq!(parse_int("2147483647", 32), Some(2147483647));
    assert_eq!(parse_int("-2147483648", 32), Some(-2147483648));
    assert_eq!(parse_int("2147483648", 32), None);
    assert_eq!(parse_int("2147483648", 64), Some(2147483648));
    assert_eq!(parse_int("9223372036854775808", 64), None);
    // parser_test.go "errors": 22d.
    for bad in [
        "22d", "", "+", "-", " 1", "1 ", "1_000", "0x10", "1.0", "1e3", "١",
    ] {
        assert_eq!(parse_int(bad, 64), None, "{bad:?}");
    }
    assert_eq!(ok("auth-session-timeout", "604800"), Parsed::Int(604800));
    err("auth-session-timeout", "7d", Failure::Build);
    assert_eq!(ok("target-control-port.svc.80", "9000"), Parsed::Int(9000));
    err("target-control-port.svc.80", "2147483648", Failure::Build);
}

#[test]
fn lists_split_on_commas_and_drop_blanks() {
    // parser_test.go "multiple values".
    assert_eq!(
        split_list("ab  c, de  \t, test, ,\t\t\t123   \t\t, \"ooo, 1,,,, 3"),
        ["ab  c", "de", "test", "123", "\"ooo", "1", "3"]
    );
    assert_eq!(split_list(""), Vec::<String>::new());
    assert_eq!(
        ok("subnets", "subnet-a, subnet-b"),
        Parsed::List(vec!["subnet-a".into(), "subnet-b".into()])
    );
}

#[test]
fn maps_follow_split_key_value_pairs() {
    // parser_test.go cases.
    assert_eq!(
        parse_map("key1=value1, key2=value2, key3/with-slash=value3, key4/empty-value=").unwrap(),
        map(&[
            ("key1", "value1"),
            ("key2", "value2"),
            ("key3/with-slash", "value3"),
            ("key4/empty-value", "")
        ])
    );
    assert_eq!(
        parse_map("key1=value1\\,valueOne, key2= value2, key3/with-slash=value3\\,valueThree, key4/empty-value=").unwrap(),
        map(&[("key1", "value1,valueOne"), ("key2", "value2"), ("key3/with-slash", "value3,valueThree"), ("key4/empty-value", "")])
    );
    assert_eq!(
        parse_map("key1=Mjk5NzkyNDU4Cg==, foo=ZGF=0=ZQo=, res=value_:/=+-@").unwrap(),
        map(&[
            ("key1", "Mjk5NzkyNDU4Cg=="),
            ("foo", "ZGF=0=ZQo="),
            ("res", "value_:/=+-@")
        ])
    );
    assert!(parse_map("key1,key2").is_err());
    assert!(parse_map("=value").is_err());
    // What splitKeyValuePairs does with the rest.
    assert_eq!(parse_map("").unwrap(), vec![]);
    assert!(parse_map(" ").is_err());
    assert_eq!(parse_map("a=b,").unwrap(), map(&[("a", "b,")]));
    assert!(parse_map("a=1,b").is_err());
    assert!(parse_map("a=1, ,b=2").is_err());
    assert_eq!(parse_map("a=1,a=2").unwrap(), map(&[("a", "2")]));
    assert_eq!(
        parse_map("a=x,y=1").unwrap(),
        map(&[("a", "x"), ("y", "1")])
    );
    // A comma followed by text without '=' anywhere later ends the map malformed...
    assert!(parse_map("a=x,y").is_err());
    // ...but one with an '=' somewhere later is a separator even if this piece has none.
    assert!(parse_map("a=x,y,z=1").is_err());
    assert_eq!(parse_map("a=\\=b").unwrap(), map(&[("a", "=b")]));
    assert_eq!(parse_map("a=b\\").unwrap(), map(&[("a", "b\\")]));
    assert_eq!(
        parse_map("ключ=значение").unwrap(),
        map(&[("ключ", "значение")])
    );
}

#[test]
fn tags_are_maps_that_aws_also_checks() {
    assert_eq!(
        ok("tags", "deployment=p1,hostname=p1.deploy.agentops.ai"),
        Parsed::Map(map(&[
            ("deployment", "p1"),
            ("hostname", "p1.deploy.agentops.ai")
        ]))
    );
    err("tags", "a=b,c", Failure::Build);
    err("tags", "aws:owner=me", Failure::Deploy);
    err("tags", &format!("{}=v", "k".repeat(129)), Failure::Deploy);
    err("tags", &format!("k={}", "v".repeat(257)), Failure::Deploy);
    err("tags", "k=a;b", Failure::Deploy);
    err("tags", "k=a\tb", Failure::Deploy);
    ok("tags", "k=a b,owner=team@example.com,path=/x:y+z");
    let fifty_one: Vec<String> = (0..51).map(|i| format!("k{i}=v")).collect();
    err("tags", &fifty_one.join(","), Failure::Deploy);
    let k = known(Object::Service, "tags");
    assert_eq!(k.parse("team=a"), Ok(Parsed::Map(map(&[("team", "a")]))));
    assert_eq!(
        k.parse("aws:x=1").map_err(|e| e.failure),
        Err(Failure::Deploy)
    );
}

#[test]
fn attribute_maps() {
    ok(
        "target-group-attributes",
        "deregistration_delay.timeout_seconds=30",
    );
    err(
        "target-group-attributes",
        "deregistration_delay.timeout_seconds",
        Failure::Build,
    );
    ok(
        "load-balancer-attributes",
        "idle_timeout.timeout_seconds=600,deletion_protection.enabled=false",
    );
    // Read with strconv.ParseBool when the Ingress is deleted (model_builder.go:562).
    err(
        "load-balancer-attributes",
        "deletion_protection.enabled=yes",
        Failure::Build,
    );
    ok(
        "listener-attributes.HTTP-80",
        "routing.http.response.server.enabled=false",
    );
    ok(
        "frontend-nlb-attributes",
        "dns_record.client_routing_policy=any_availability_zone",
    );
    err(
        "frontend-nlb-attributes",
        "dns_record.client_routing_policy=nearest",
        Failure::Build,
    );
    assert_eq!(
        ok("minimum-load-balancer-capacity", "CapacityUnits=100"),
        Parsed::Map(map(&[("CapacityUnits", "100")]))
    );
    err(
        "minimum-load-balancer-capacity",
        "capacityUnits=100",
        Failure::Build,
    );
    err(
        "minimum-load-balancer-capacity",
        "CapacityUnits=lots",
        Failure::Build,
    );
    err(
        "minimum-load-balancer-capacity",
        "CapacityUnits=2147483648",
        Failure::Build,
    );
}

#[test]
fn cidrs_are_go_net_parse_cidr() {
    assert_eq!(parse_cidr("10.0.0.0/8"), Ok(false));
    assert_eq!(parse_cidr("10.1.2.3/24"), Ok(false));
    assert_eq!(parse_cidr("0.0.0.0/0"), Ok(false));
    assert_eq!(parse_cidr("2001:db8::/32"), Ok(true));
    assert_eq!(parse_cidr("::ffff:1.2.3.4/120"), Ok(true));
    assert_eq!(parse_cidr("10.0.0.0/008"), Ok(false));
    for bad in [
        "10.0.0.0",
        "10.0.0.0/33",
        "::/129",
        "010.0.0.0/8",
        "10.0.0/8",
        "10.0.0.0/+8",
        "10.0.0.0/",
        "fe80::1%eth0/64",
        "x/8",
        " 10.0.0.0/8",
    ] {
        assert!(parse_cidr(bad).is_err(), "{bad}");
    }
    ok("inbound-cidrs", "10.0.0.0/8, ::/0");
    err("inbound-cidrs", "10.0.0.0/8, 192.168.0.1", Failure::Build);
    // source-ip conditions go to AWS unchecked by the controller.
    ok(
        "conditions.svc",
        r#"[{"field":"source-ip","sourceIPConfig":{"values":["192.168.0.0/16"]}}]"#,
    );
    err(
        "conditions.svc",
        r#"[{"field":"source-ip","sourceIPConfig":{"values":["home"]}}]"#,
        Failure::Deploy,
    );
}

#[test]
fn intstr_parse_is_parse_int_32() {
    assert_eq!(intstr_parse("80"), Ok(80));
    assert_eq!(intstr_parse("+80"), Ok(80));
    assert_eq!(intstr_parse("-1"), Ok(-1));
    assert_eq!(intstr_parse("4294967376"), Err(()));
    assert_eq!(intstr_parse("http"), Err(()));
    assert_eq!(intstr_parse("80 "), Err(()));
}

#[test]
fn port_names_are_iana_svc_names() {
    for good in ["http", "grpc-web", "h2c", "a1", "metrics-15chars"] {
        assert!(is_port_name(good), "{good}");
    }
    for bad in [
        "",
        "HTTP",
        "80",
        "-http",
        "http-",
        "gr--pc",
        "sixteen-chars-xx",
        "a_b",
    ] {
        assert!(!is_port_name(bad), "{bad}");
    }
}

#[test]
fn ports_and_ranges() {
    assert_eq!(ok("ssl-redirect", "443"), Parsed::Int(443));
    for bad in ["0", "65536", "-443"] {
        err("ssl-redirect", bad, Failure::Build);
    }
    err("ssl-redirect", "https", Failure::Build);
    assert_eq!(
        ok("healthcheck-port", "traffic-port"),
        Parsed::HealthCheckPort(HealthCheckPort::TrafficPort)
    );
    assert_eq!(
        ok("healthcheck-port", "8080"),
        Parsed::HealthCheckPort(HealthCheckPort::Number(8080))
    );
    assert_eq!(
        ok("healthcheck-port", "http"),
        Parsed::HealthCheckPort(HealthCheckPort::Name("http".into()))
    );
    err("healthcheck-port", "70000", Failure::Deploy);
    err("healthcheck-port", "4294967376", Failure::Build);
    err("healthcheck-port", "Traffic-Port", Failure::Build);
    assert_eq!(
        ok("frontend-nlb-healthcheck-port", "80"),
        Parsed::HealthCheckPort(HealthCheckPort::Number(80))
    );
    err("frontend-nlb-healthcheck-port", "http", Failure::Build);
    for (s, lo, hi) in [
        ("healthcheck-interval-seconds", 5, 300),
        ("healthcheck-timeout-seconds", 2, 120),
        ("healthy-threshold-count", 2, 10),
        ("unhealthy-threshold-count", 2, 10),
        ("frontend-nlb-healthcheck-interval-seconds", 5, 300),
    ] {
        assert_eq!(ok(s, &lo.to_string()), Parsed::Int(lo));
        assert_eq!(ok(s, &hi.to_string()), Parsed::Int(hi));
        err(s, &(lo - 1).to_string(), Failure::Deploy);
        err(s, &(hi + 1).to_string(), Failure::Deploy);
        err(s, "15s", Failure::Build);
    }
}

#[test]
fn strings_aws_checks() {
    ok("healthcheck-path", "/health");
    err("healthcheck-path", "health", Failure::Deploy);
    err("healthcheck-path", "", Failure::Deploy);
    for good in ["200", "200,202", "200-299", "200-499", "12", "0-99"] {
        ok("success-codes", good);
    }
    for bad in ["", "600", "299-200", "200-", "2xx", "200,", "100"] {
        err("success-codes", bad, Failure::Deploy);
    }
    ok("frontend-nlb-healthcheck-success-codes", "200-599");
    err(
        "frontend-nlb-healthcheck-success-codes",
        "12",
        Failure::Deploy,
    );
    ok("load-balancer-name", "shared-alb-1");
    err("load-balancer-name", &"a".repeat(33), Failure::Build);
    for bad in ["", "my_alb", "-alb", "alb-", "internal-alb"] {
        err("load-balancer-name", bad, Failure::Deploy);
    }
    ok(
        "certificate-arn",
        "arn:aws:acm:us-east-1:123456789012:certificate/a, arn:aws:acm:us-east-1:123456789012:certificate/b",
    );
    err("certificate-arn", "my-cert", Failure::Deploy);
    ok("wafv2-acl-arn", "none");
    ok(
        "wafv2-acl-arn",
        "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/x/y",
    );
    err("wafv2-acl-arn", "x", Failure::Deploy);
    ok("auth-on-unauthenticated-request", "deny");
    err("auth-on-unauthenticated-request", "DENY", Failure::Deploy);
    ok("customer-owned-ipv4-pool", "ipv4pool-coip-1");
    err("customer-owned-ipv4-pool", "", Failure::Build);
    assert_eq!(ok("ssl-policy", "anything"), Parsed::Str("anything".into()));
}
