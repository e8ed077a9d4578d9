"""AWS's documented ELBv2 constraints, enforced in the local moto server.

moto (5.2.5) accepts most values AWS refuses (a health check interval of 1000, a path without a
leading '/', an HTTP code of 600, 51 tags, an unknown target group attribute, a rule forwarding an
HTTP listener to a gRPC target group, ...), refuses some AWS accepts (an 11th tag, a
deregistration delay of 3600) and ignores GrpcCode on ModifyTargetGroup. A test that "the AWS
Load Balancer Controller reconciles in moto" proves little while that is so. This module checks
every parameter jockey's allowlist can let a tenant influence, for the calls the controller makes
(CreateTargetGroup, ModifyTargetGroup, ModifyTargetGroupAttributes, CreateRule, ModifyRule,
SetRulePriorities, CreateListener, ModifyListener, CreateLoadBalancer, AddTags), before moto
acts, and answers with the error code AWS uses.

One function per API call; each constraint is one check whose comment names where AWS documents
it. Sources:
  API  = the ELBv2 API reference, https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/
         (the same text and min/max/pattern constraints as botocore's elbv2 service-2.json, which
         ships in moto's venv: `python -c "import botocore; print(botocore.__file__)"`)
  ALB  = the Application Load Balancers guide, https://docs.aws.amazon.com/elasticloadbalancing/latest/application/
Where AWS documents a constraint but not the error it answers with, the code is the one the API
reference lists for the call (or one seen from AWS in public bug reports, cited), and the message
is ours; such lines say "code: observed" or "code: assumed". Where the documentation is silent,
nothing is enforced and a comment says so.

install() wires the checks into moto; moto-server.py calls it. Nothing here is jockey code.
"""

import re
import unicodedata

from moto.elbv2 import models, responses
from moto.elbv2.exceptions import ELBClientError

API = "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/"
ALB = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"

# Application Load Balancer target groups (API_CreateTargetGroup.html#Protocol: "For Application
# Load Balancers, the supported protocols are HTTP and HTTPS"). The ALB-only checks apply to these.
ALB_PROTOCOLS = ("HTTP", "HTTPS")
# API_CreateTargetGroup.html#ProtocolVersion: GRPC, HTTP2, or the default HTTP1.
PROTOCOL_VERSIONS = ("HTTP1", "HTTP2", "GRPC")
# API_CreateTargetGroup.html#TargetType.
TARGET_TYPES = ("instance", "ip", "lambda", "alb")
# API_CreateTargetGroup.html#HealthCheckProtocol (ProtocolEnum).
PROTOCOL_ENUM = ("HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC")


def fail(code, message):
    raise ELBClientError(code, message)


# ---------------------------------------------------------------------------------------------
# The API reference's member constraints (min/max/pattern), answered as AWS's request validation
# answers them: ValidationError, "1 validation error detected: Value '0' at 'port' failed to
# satisfy constraint: Member must have value greater than or equal to 1" (seen from AWS in
# kubernetes-sigs/aws-load-balancer-controller#4014).


def _invalid(value, where, constraint):
    fail(
        "ValidationError",
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: {constraint}",
    )


def number(value, where, low, high):
    try:
        n = int(value)
    except (TypeError, ValueError):
        _invalid(value, where, "Member must be an integer")
    if n < low:
        _invalid(value, where, f"Member must have value greater than or equal to {low}")
    if n > high:
        _invalid(value, where, f"Member must have value less than or equal to {high}")
    return n


def length(value, where, low, high):
    if not isinstance(value, str):
        _invalid(value, where, "Member must be a string")
    if len(value) < low:
        _invalid(value, where, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        _invalid(value, where, f"Member must have length less than or equal to {high}")


def one_of(value, where, allowed):
    if value not in allowed:
        _invalid(value, where, f"Member must satisfy enum value set: [{', '.join(allowed)}]")


# ---------------------------------------------------------------------------------------------
# Target groups


def _codes(value, low, high, kind):
    """A matcher's code list: "200", "200,202", "200-299" (API_Matcher.html), each in low..high."""
    if not isinstance(value, str) or value == "":
        # The message AWS answers (hashicorp/terraform#16690).
        fail("ValidationError", f"Health check matcher {kind} code cannot be empty")
    for item in value.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            fail(
                "ValidationError",
                f"Health check matcher {kind} code '{value}' must be like \"200\", \"200,202\" "
                f"or \"200-299\"",
            )
        for code in (int(c) for c in m.groups() if c is not None):
            if not low <= code <= high:
                fail(
                    "ValidationError",
                    f"Health check matcher {kind} code '{value}' must be within '{low}-{high}'",
                )
        # Silent: whether AWS refuses a descending range ("299-200"); not enforced.


def _health_check(p, protocol, version, current):
    """The health check members CreateTargetGroup and ModifyTargetGroup share. `current` is the
    target group being modified (None on create): its values stand in for members not sent."""
    alb = protocol in ALB_PROTOCOLS
    # API_CreateTargetGroup.html#HealthCheckIntervalSeconds: "The range is 5-300".
    interval = p.get("HealthCheckIntervalSeconds")
    if interval is not None:
        interval = number(interval, "healthCheckIntervalSeconds", 5, 300)
    # API_CreateTargetGroup.html#HealthCheckTimeoutSeconds: "The range is 2–120 seconds".
    timeout = p.get("HealthCheckTimeoutSeconds")
    if timeout is not None:
        timeout = number(timeout, "healthCheckTimeoutSeconds", 2, 120)
    # API_CreateTargetGroup.html#HealthyThresholdCount / #UnhealthyThresholdCount: "The range is 2-10".
    if p.get("HealthyThresholdCount") is not None:
        number(p["HealthyThresholdCount"], "healthyThresholdCount", 2, 10)
    if p.get("UnhealthyThresholdCount") is not None:
        number(p["UnhealthyThresholdCount"], "unhealthyThresholdCount", 2, 10)
    # API_CreateTargetGroup.html#HealthCheckProtocol: ProtocolEnum.
    hc_protocol = p.get("HealthCheckProtocol")
    if hc_protocol is not None:
        one_of(hc_protocol, "healthCheckProtocol", PROTOCOL_ENUM)
        # Same: "The TCP protocol is not supported for health checks if the protocol of the target
        # group is HTTP or HTTPS. The GENEVE, TLS, UDP, TCP_UDP, QUIC, and TCP_QUIC protocols are
        # not supported for health checks." (code: assumed ValidationError)
        if alb and hc_protocol not in ALB_PROTOCOLS:
            fail(
                "ValidationError",
                f"Health check protocol '{hc_protocol}' is not supported for target groups with "
                f"the {protocol} protocol",
            )
    # API_CreateTargetGroup.html#HealthCheckPort: "traffic-port" or a port; a port is 1-65535
    # (API_CreateTargetGroup.html#Port, ALB load-balancer-target-groups.html "Ports: 1-65535").
    hc_port = p.get("HealthCheckPort")
    if hc_port is not None and hc_port != "traffic-port":
        if not re.fullmatch(r"\d+", str(hc_port)):
            _invalid(hc_port, "healthCheckPort", "Member must be 'traffic-port' or a port number")
        number(hc_port, "healthCheckPort", 1, 65535)
    # API_CreateTargetGroup.html#HealthCheckPath: Path, length 1-1024.
    path = p.get("HealthCheckPath")
    if path is not None:
        length(path, "healthCheckPath", 1, 1024)
        if alb and version == "GRPC":
            # Same: "[GRPC protocol version] The path of a custom health check method with the
            # format /package.service/method"; ALB load-balancer-target-groups.html
            # #target-group-protocol-version: "You must provide a custom health check method with
            # the format /package.service/method". Silent on the characters of each part and on
            # whether the service must carry a package ("/Greeter/Check"): only the two
            # non-empty parts are enforced. (code: assumed ValidationError)
            if not re.fullmatch(r"/[^/\s]+/[^/\s]+", path):
                fail(
                    "ValidationError",
                    f"Health check path '{path}' must have the format /package.service/method "
                    f"for the GRPC protocol version",
                )
        elif alb and not path.startswith("/"):
            # ALB target-group-health-checks.html, HealthCheckPath: "Specify a valid URI
            # (/path?query)". Silent on the characters allowed after the '/': not enforced.
            # (code: assumed ValidationError)
            fail("ValidationError", f"Health check path '{path}' must begin with a '/' character")
    # API_Matcher.html: "If the protocol version is gRPC, these are gRPC codes. Otherwise, these
    # are HTTP codes." HttpCode for ALBs: "values between 200 and 499 ... multiple values (for
    # example, "200,202") or a range of values (for example, "200-299")". GrpcCode: "values
    # between 0 and 99", same shapes. (code: ValidationError, as AWS answers an empty HttpCode)
    matcher = p.get("Matcher")
    if alb and matcher is not None:
        grpc = version == "GRPC"
        if "HttpCode" in matcher:
            if grpc:
                fail("ValidationError", "A target group with the GRPC protocol version needs a "
                     "GrpcCode matcher, not an HttpCode matcher")
            _codes(matcher["HttpCode"], 200, 499, "HTTP")
        if "GrpcCode" in matcher:
            if not grpc:
                fail("ValidationError", f"A target group with the {version} protocol version "
                     "needs an HttpCode matcher, not a GrpcCode matcher")
            _codes(matcher["GrpcCode"], 0, 99, "gRPC")
    # Observed, not in the ELBv2 documentation (only the Classic ELB's API_HealthCheck.html says
    # "This value must be less than the Interval value"): AWS refuses a timeout not below the
    # interval with "ValidationError: Health check interval must be greater than the timeout."
    # (terraform-linters/tflint-ruleset-aws#404, hashicorp/terraform-provider-aws#48071). Members
    # not sent take the target group's current values or the API reference's defaults (interval
    # 30; timeout 6 for HTTP, 10 for HTTPS: API_CreateTargetGroup.html#HealthCheckTimeoutSeconds).
    if alb and (interval is not None or timeout is not None):
        if current is not None:
            interval = interval if interval is not None else int(current.health_check_interval_seconds)
            timeout = timeout if timeout is not None else int(current.health_check_timeout_seconds)
        else:
            interval = interval if interval is not None else 30
            timeout = timeout if timeout is not None else (6 if protocol == "HTTP" else 10)
        if timeout >= interval:
            fail("ValidationError", "Health check interval must be greater than the timeout.")


def create_target_group(p, backend):
    """API_CreateTargetGroup.html"""
    protocol = p.get("Protocol")
    # API_CreateTargetGroup.html#TargetType.
    if p.get("TargetType") is not None:
        one_of(p["TargetType"], "targetType", TARGET_TYPES)
    # API_CreateTargetGroup.html#Port: 1-65535.
    if p.get("Port") is not None:
        number(p["Port"], "port", 1, 65535)
    version = p.get("ProtocolVersion")
    if protocol in ALB_PROTOCOLS:
        # API_CreateTargetGroup.html#ProtocolVersion: "[HTTP/HTTPS protocol] ... GRPC ... HTTP2
        # ... The default is HTTP1". (code: assumed ValidationError)
        if version is not None:
            one_of(version, "protocolVersion", PROTOCOL_VERSIONS)
        version = version or "HTTP1"
    _health_check(p, protocol, version, None)
    _new_tags(p.get("Tags"))


def modify_target_group(p, backend):
    """API_ModifyTargetGroup.html"""
    tg = backend.target_groups.get(p.get("TargetGroupArn"))
    if tg is None:
        return  # moto answers TargetGroupNotFound
    _health_check(p, tg.protocol, tg.protocol_version or "HTTP1", tg)


def _integer_attribute(key, value, low, high, off=False):
    if off and value == "off":
        return
    if not re.fullmatch(r"-?\d+", str(value)) or not low <= int(value) <= high:
        bounds = f"'{low}-{high}' inclusive" + (" or 'off'" if off else "")
        fail("ValidationError", f"'{key}' value '{value}' must be between {bounds}")


def _choice_attribute(key, value, allowed):
    if value not in allowed:
        fail("ValidationError", f"'{key}' value '{value}' must be one of [{', '.join(allowed)}]")


# API_TargetGroupAttribute.html: the keys an Application Load Balancer target group (target type
# instance or ip) supports, each with its documented domain. Keys listed there only for Network
# or Gateway Load Balancers or Lambda targets are refused like unknown keys. (code: observed
# "ValidationError: Target group attribute key 'stickiness.enabled' is not recognized" for a key
# the target group's kind does not support, hashicorp/terraform-provider-aws#19953)
BOOL = ("true", "false")
ALB_ATTRIBUTES = {
    # "The range is 0-3600 seconds."
    "deregistration_delay.timeout_seconds": lambda k, v: _integer_attribute(k, v, 0, 3600),
    # "The value is true or false."
    "stickiness.enabled": lambda k, v: _choice_attribute(k, v, BOOL),
    # "lb_cookie and app_cookie for Application Load Balancers."
    "stickiness.type": lambda k, v: _choice_attribute(k, v, ("lb_cookie", "app_cookie")),
    # "The value is true, false or use_load_balancer_configuration."
    "load_balancing.cross_zone.enabled":
        lambda k, v: _choice_attribute(k, v, BOOL + ("use_load_balancer_configuration",)),
    # "off or an integer from 1 to the maximum number of targets." The maximum number of targets
    # changes with registrations: only the lower bound is enforced.
    "target_group_health.dns_failover.minimum_healthy_targets.count":
        lambda k, v: _integer_attribute(k, v, 1, 2**31 - 1, off=True),
    # "off or an integer from 1 to 100."
    "target_group_health.dns_failover.minimum_healthy_targets.percentage":
        lambda k, v: _integer_attribute(k, v, 1, 100, off=True),
    # "1 to the maximum number of targets." (no "off"; upper bound as above)
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count":
        lambda k, v: _integer_attribute(k, v, 1, 2**31 - 1),
    # "off or an integer from 1 to 100."
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage":
        lambda k, v: _integer_attribute(k, v, 1, 100, off=True),
    # "round_robin, least_outstanding_requests, or weighted_random."
    "load_balancing.algorithm.type": lambda k, v: _choice_attribute(
        k, v, ("round_robin", "least_outstanding_requests", "weighted_random")),
    # "The value is on or off." (only with weighted_random: checked below)
    "load_balancing.algorithm.anomaly_mitigation": lambda k, v: _choice_attribute(k, v, ("on", "off")),
    # "The range is 30-900 seconds (15 minutes). The default is 0 seconds (disabled)."
    "slow_start.duration_seconds":
        lambda k, v: None if str(v) == "0" else _integer_attribute(k, v, 30, 900),
    # "Names that start with the following prefixes are not allowed: AWSALB, AWSALBAPP, and
    # AWSALBTG". Silent on length and characters: not enforced.
    "stickiness.app_cookie.cookie_name": lambda k, v: _cookie_name(k, v),
    # "The range is 1 second to 1 week (604800 seconds)."
    "stickiness.app_cookie.duration_seconds": lambda k, v: _integer_attribute(k, v, 1, 604800),
    # "The range is 1 second to 1 week (604800 seconds)."
    "stickiness.lb_cookie.duration_seconds": lambda k, v: _integer_attribute(k, v, 1, 604800),
    # "inspect_immediately" or "inspect_after_sufficient_data"; HTTP2 only (checked below).
    "waf.http2.traffic_inspection_behavior": lambda k, v: _choice_attribute(
        k, v, ("inspect_immediately", "inspect_after_sufficient_data")),
    # "The value is true or false."; HTTP2 or GRPC only (checked below).
    "routing.http2.rst_stream_error_forwarding.enabled": lambda k, v: _choice_attribute(k, v, BOOL),
}


def _cookie_name(key, value):
    # AWSALB is a prefix of the other two reserved prefixes.
    if str(value).startswith("AWSALB"):
        fail("ValidationError", f"'{key}' value '{value}' must not start with AWSALB, AWSALBAPP "
             "or AWSALBTG: those names are reserved for use by the load balancer")


def modify_target_group_attributes(p, backend):
    """API_ModifyTargetGroupAttributes.html, for target groups of Application Load Balancers."""
    tg = backend.target_groups.get(p.get("TargetGroupArn"))
    if tg is None or tg.protocol not in ALB_PROTOCOLS or tg.target_type not in ("instance", "ip"):
        return  # moto answers TargetGroupNotFound, or the target group is not an ALB's
    attributes = {a.get("Key"): a.get("Value") for a in p.get("Attributes") or []}
    for key, value in attributes.items():
        # API_TargetGroupAttribute.html#Key: length 0-256, pattern ^[a-zA-Z0-9._]+$.
        if not isinstance(key, str) or not re.fullmatch(r"[a-zA-Z0-9._]{1,256}", key):
            _invalid(key, "attributes.member.key", "Member must satisfy regular expression "
                     "pattern: ^[a-zA-Z0-9._]+$")
        check = ALB_ATTRIBUTES.get(key)
        if check is None:
            fail("ValidationError", f"Target group attribute key '{key}' is not recognized")
        check(key, value)
    # The values in force after this call: the target group's, then this call's.
    after = {**{k: str(v) for k, v in tg.attributes.items()}, **attributes}
    version = tg.protocol_version or "HTTP1"
    # API_TargetGroupAttribute.html: anomaly_mitigation is "Only available when
    # load_balancing.algorithm.type is weighted_random." (code: InvalidConfigurationRequest, the
    # one error ModifyTargetGroupAttributes lists for a configuration; message ours)
    if after.get("load_balancing.algorithm.anomaly_mitigation") == "on" and \
            after.get("load_balancing.algorithm.type") != "weighted_random":
        fail("InvalidConfigurationRequest", "Anomaly mitigation is only available when "
             "load_balancing.algorithm.type is weighted_random")
    # ALB load-balancer-target-groups.html, slow start mode considerations: "You cannot enable
    # both slow start mode and least outstanding requests." (code: assumed, as above) Silent on
    # slow start with weighted_random: not enforced.
    if after.get("load_balancing.algorithm.type") == "least_outstanding_requests" and \
            str(after.get("slow_start.duration_seconds", "0")) != "0":
        fail("InvalidConfigurationRequest", "You cannot enable both slow start mode and the "
             "least outstanding requests routing algorithm")
    # API_TargetGroupAttribute.html: waf.http2.traffic_inspection_behavior "applies only to target
    # groups that use the HTTP2 protocol version"; routing.http2.rst_stream_error_forwarding
    # .enabled "applies only to target groups that use the HTTP2 or GRPC protocol version".
    # (code: assumed, as above)
    if "waf.http2.traffic_inspection_behavior" in attributes and version != "HTTP2":
        fail("InvalidConfigurationRequest", "waf.http2.traffic_inspection_behavior applies only "
             f"to target groups with the HTTP2 protocol version, not {version}")
    if "routing.http2.rst_stream_error_forwarding.enabled" in attributes and \
            version not in ("HTTP2", "GRPC"):
        fail("InvalidConfigurationRequest", "routing.http2.rst_stream_error_forwarding.enabled "
             f"applies only to target groups with the HTTP2 or GRPC protocol version, not {version}")
    # moto's own check (app_cookie without a cookie name: InvalidConfigurationRequest, as AWS
    # documents it in ALB sticky-sessions.html) still runs after this one.


# ---------------------------------------------------------------------------------------------
# Listeners and rules

# ALB rule-condition-types.html, "Host conditions": "can contain any of the following characters:
# A–Z, a–z, 0–9, - ., * (matches 0 or more characters), ? (matches exactly 1 character). You must
# include at least one "." character. You can include only alphabetical characters after the
# final "." character."
HOST_VALUE = re.compile(r"[A-Za-z0-9\-.*?]*\.[A-Za-z]*")
# Same, "Path conditions": "A–Z, a–z, 0–9, _ - . $ / ~ " ' @ : +, & (using &amp;), *, ?".
PATH_VALUE = re.compile(r"[A-Za-z0-9_\-.$/~\"'@:+&*?]*")
# API_HttpHeaderConditionConfig.html#HttpHeaderName: "The allowed characters are specified by RFC
# 7230": a token (RFC 7230 section 3.2.6: tchar).
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# ALB rule-condition-types.html, "Condition basics": "Each rule can optionally include zero or one
# of each of the following conditions: host-header, http-request-method, path-pattern, and
# source-ip."
AT_MOST_ONCE = ("host-header", "http-request-method", "path-pattern", "source-ip")
CONFIG_OF = {
    "host-header": "HostHeaderConfig",
    "path-pattern": "PathPatternConfig",
    "http-header": "HttpHeaderConfig",
    "http-request-method": "HttpRequestMethodConfig",
    "query-string": "QueryStringConfig",
    "source-ip": "SourceIpConfig",
}


def _condition_values(c):
    """A condition's match evaluations: (plain values, regex values)."""
    config = c.get(CONFIG_OF.get(c.get("Field"), ""), {}) or {}
    values = list(c.get("Values") or []) + list(config.get("Values") or [])
    regex = list(c.get("RegexValues") or []) + list(config.get("RegexValues") or [])
    return values, regex


def _conditions(conditions):
    """The members of RuleCondition (API_RuleCondition.html) and the ALB guide's rule limits.
    Every refusal here is a ValidationError, as AWS answers rule conditions it refuses ("Condition
    values must be unique", kubernetes-sigs/aws-load-balancer-controller#4306); the messages are
    ours."""
    seen = set()
    evaluations = 0
    wildcards = 0
    for c in conditions or []:
        field = c.get("Field")
        if field in AT_MOST_ONCE:
            if field in seen:
                fail("ValidationError", f"A rule can have only one '{field}' condition")
            seen.add(field)
        values, regex = _condition_values(c)
        count = len(values) + len(regex)
        # ALB rule-condition-types.html: "You can specify up to three match evaluations per
        # condition."
        if count > 3:
            fail("ValidationError", f"A '{field}' condition can have at most '3' match "
                 f"evaluations, not {count}")
        evaluations += count
        for v in values:
            # Query string conditions hold Key/Value pairs.
            texts = [v.get("Key") or "", v.get("Value") or ""] if isinstance(v, dict) else [v]
            for text in texts:
                if not isinstance(text, str):
                    fail("ValidationError", f"A '{field}' condition value must be a string")
                if field in ("http-header", "host-header", "path-pattern", "query-string"):
                    wildcards += text.count("*") + text.count("?")
            if isinstance(v, str):
                # API_RuleCondition.html: "the value for a condition can't be empty".
                if v == "":
                    fail("ValidationError", f"A '{field}' condition value can't be empty")
                _condition_value(field, v)
        for r in regex:
            # API_HostHeaderConditionConfig.html etc. #RegexValues: "The maximum length of each
            # string is 128 characters."
            if not isinstance(r, str) or not 0 < len(r) <= 128:
                fail("ValidationError", f"A '{field}' regex value must have 1 to 128 characters")
        if field == "http-header":
            name = (c.get("HttpHeaderConfig") or {}).get("HttpHeaderName")
            # API_HttpHeaderConditionConfig.html#HttpHeaderName: "The maximum length is 40
            # characters. ... The allowed characters are specified by RFC 7230. Wildcards are not
            # supported. You can't use an HTTP header condition to specify the host header."
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name) or len(name) > 40:
                fail("ValidationError", f"HTTP header name '{name}' must be 1 to 40 characters "
                     "of an RFC 7230 token")
            if "*" in name or "?" in name:
                fail("ValidationError", f"HTTP header name '{name}' can't contain wildcards")
            if name.lower() == "host":
                fail("ValidationError", "You can't use an HTTP header condition to specify the "
                     "host header; use a host-header condition")
    # ALB rule-condition-types.html: "You can specify up to five match evaluations per rule."
    # (ALB load-balancer-limits.html: "Condition values per rule: 5".)
    if evaluations > 5:
        fail("ValidationError", f"A rule can only have '5' condition values, not {evaluations}")
    # Same: "There is a limit of five wildcard characters per rule." (load-balancer-limits.html:
    # "Condition wildcards per rule: 5")
    if wildcards > 5:
        fail("ValidationError", f"A rule can only have '5' wildcards, not {wildcards}")


def _condition_value(field, v):
    if field == "host-header":
        # ALB rule-condition-types.html, "Host conditions": "can be up to 128 characters".
        if len(v) > 128 or not HOST_VALUE.fullmatch(v):
            fail("ValidationError", f"Host header value '{v}' must be at most 128 characters of "
                 "A-Z a-z 0-9 - . * ?, with a '.' followed only by letters")
    elif field == "path-pattern":
        # Same, "Path conditions": "can be up to 128 characters in length".
        if len(v) > 128 or not PATH_VALUE.fullmatch(v):
            fail("ValidationError", f"Path pattern '{v}' must be at most 128 characters of "
                 "A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?")
    elif field == "http-header":
        # API_HttpHeaderConditionConfig.html#Values: "The maximum length of each string is 128
        # characters."
        if len(v) > 128:
            fail("ValidationError", "An HTTP header value must be at most 128 characters")


def _forwarded_target_groups(actions):
    for action in actions or []:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            yield action["TargetGroupArn"]
        for tg in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if tg.get("TargetGroupArn"):
                yield tg["TargetGroupArn"]


def _actions(actions, listener_protocol, backend):
    """ALB load-balancer-target-groups.html#target-group-protocol-version, considerations for the
    gRPC and for the HTTP/2 protocol version: "The only supported listener protocol is HTTPS."
    A forward from a listener of another protocol to such a target group is refused with
    InvalidLoadBalancerAction, "Listener protocol 'HTTP' is not supported with a target group with
    the protocol-version 'HTTP2'" (the answer AWS gave to ModifyRule in
    kubernetes-sigs/aws-load-balancer-controller#4497; aws/copilot-cli#4551 for CreateListener)."""
    if listener_protocol is None:
        return
    for arn in _forwarded_target_groups(actions):
        tg = backend.target_groups.get(arn)
        if tg is None:
            continue  # moto answers TargetGroupNotFound
        version = tg.protocol_version or "HTTP1"
        if version in ("HTTP2", "GRPC") and listener_protocol != "HTTPS":
            fail("InvalidLoadBalancerAction", f"Listener protocol '{listener_protocol}' is not "
                 f"supported with a target group with the protocol-version '{version}'")


def _listener_protocol(backend, listener_arn):
    try:
        return backend.describe_listeners(None, [listener_arn])[0].protocol
    except Exception:  # noqa: BLE001 - moto answers ListenerNotFound itself
        return None


def create_rule(p, backend):
    """API_CreateRule.html"""
    # API_CreateRule.html#Priority: RulePriority, 1-50000.
    number(p.get("Priority"), "priority", 1, 50000)
    _conditions(p.get("Conditions"))
    _actions(p.get("Actions"), _listener_protocol(backend, p.get("ListenerArn")), backend)
    _new_tags(p.get("Tags"))


def modify_rule(p, backend):
    """API_ModifyRule.html"""
    if p.get("Conditions"):
        _conditions(p["Conditions"])
    if p.get("Actions"):
        try:
            rule = backend.describe_rules(None, [p.get("RuleArn")])[0]
        except Exception:  # noqa: BLE001 - moto answers RuleNotFound itself
            return
        _actions(p["Actions"], _listener_protocol(backend, rule.listener_arn), backend)


def set_rule_priorities(p, backend):
    """API_SetRulePriorities.html"""
    for pair in p.get("RulePriorities") or []:
        # API_RulePriorityPair.html#Priority: 1-50000.
        number(pair.get("Priority"), "rulePriorities.member.priority", 1, 50000)


def create_listener(p, backend):
    """API_CreateListener.html"""
    _actions(p.get("DefaultActions"), p.get("Protocol"), backend)
    _new_tags(p.get("Tags"))


def modify_listener(p, backend):
    """API_ModifyListener.html"""
    protocol = p.get("Protocol") or _listener_protocol(backend, p.get("ListenerArn"))
    _actions(p.get("DefaultActions"), protocol, backend)
    # Not enforced: a ModifyListener that turns an HTTPS listener whose rules forward to HTTP2 or
    # GRPC target groups into an HTTP one (the controller does not change a listener's protocol).


# ---------------------------------------------------------------------------------------------
# Tags

# API_Tag.html#Key / #Value: pattern ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ (letters, separators,
# numbers, and these). Python's re has no \p{..}: the categories are read from unicodedata.
TAG_PUNCTUATION = set("_.:/=+-@")
MAX_TAGS = 50


def _tag_text(text, where, low, high):
    length(text, where, low, high)
    for ch in text:
        if ch not in TAG_PUNCTUATION and unicodedata.category(ch)[0] not in "LZN":
            _invalid(text, where, r"Member must satisfy regular expression pattern: "
                     r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$")


def _reserved(key):
    # ALB target-group-tags.html and load-balancer-tags.html: "Do not use the aws: prefix in your
    # tag names or values because it is reserved for AWS use. ... Tags with this prefix do not
    # count against your tags per resource limit." Any case (AWS's tagging guide,
    # https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html:
    # "aws:, AWS:, or any upper or lowercase combination"). Enforced for keys; for values AWS is
    # not known to refuse it, so not enforced. (code: assumed ValidationError)
    return key.lower().startswith("aws:")


def _new_tags(tags, existing=None):
    """Tags given to a resource: on its creation (`existing` None) or by AddTags."""
    if tags is None:
        return
    keys = []
    for i, tag in enumerate(tags, start=1):
        key = tag.get("Key")
        # API_Tag.html#Key: length 1-128; #Value: length 0-256. (ALB target-group-tags.html says
        # 127 and 255 "Unicode characters"; the API reference's limits are enforced.)
        _tag_text(key, f"tags.{i}.member.key", 1, 128)
        if tag.get("Value") is not None:
            _tag_text(tag["Value"], f"tags.{i}.member.value", 0, 256)
        if _reserved(key):
            fail("ValidationError", f"Tag key '{key}' uses the reserved prefix 'aws:'")
        keys.append(key)
    # API_AddTags.html errors: DuplicateTagKeys, "A tag key was specified more than once."
    for key in keys:
        if keys.count(key) > 1:
            fail("DuplicateTagKeys", f"Tag key was specified more than once: {key}")
    # ALB target-group-tags.html: "Maximum number of tags per resource—50"; API_AddTags.html
    # errors: TooManyTags, "You've reached the limit on the number of tags for this resource."
    total = {k for k in (existing or {}) if not _reserved(k)} | set(keys)
    if len(total) > MAX_TAGS:
        fail("TooManyTags", f"You've reached the limit on the number of tags for this resource "
             f"({len(total)} > {MAX_TAGS})")


def add_tags(p, backend):
    """API_AddTags.html"""
    for arn in p.get("ResourceArns") or []:
        _new_tags(p.get("Tags") or [], backend.tagging_service.get_tag_dict_for_resource(arn))


def create_load_balancer(p, backend):
    """API_CreateLoadBalancer.html (its tags; jockey's tenants set nothing else here)."""
    _new_tags(p.get("Tags"))


# ---------------------------------------------------------------------------------------------
# Wiring into moto

CHECKS = {
    "create_target_group": create_target_group,
    "modify_target_group": modify_target_group,
    "modify_target_group_attributes": modify_target_group_attributes,
    "create_rule": create_rule,
    "modify_rule": modify_rule,
    "set_rule_priorities": set_rule_priorities,
    "create_listener": create_listener,
    "modify_listener": modify_listener,
    "add_tags": add_tags,
    "create_load_balancer": create_load_balancer,
}


def _checked(name, check, handler):
    def respond(self):
        check(self._get_params(), self.elbv2_backend)
        return handler(self)

    respond.__name__ = name
    return respond


def _add_tags_without_moto_limit(self, resource_arns, tags):
    """moto refuses an 11th tag; AWS allows 50 (checked in add_tags() above)."""
    for arn in resource_arns:
        self._get_resource_by_arn(arn)
        self.tagging_service.tag_resource(arn, tags)


_moto_modify_target_group_attributes = models.ELBv2Backend.modify_target_group_attributes


def _modify_target_group_attributes(self, target_group_arn, attributes):
    """moto refuses deregistration_delay.timeout_seconds=3600 (its range(0, 3600) stops at 3599);
    AWS documents 0-3600 inclusive: the 3600 is let through. And moto refuses stickiness.type
    app_cookie unless the same call names the cookie, even when the target group has a cookie
    name already: that name is handed to its check."""
    tg = self.target_groups.get(target_group_arn)
    if tg is not None and attributes.get("stickiness.type") == "app_cookie" and \
            "stickiness.app_cookie.cookie_name" not in attributes and \
            tg.attributes.get("stickiness.app_cookie.cookie_name"):
        attributes = {**attributes, "stickiness.app_cookie.cookie_name":
                      tg.attributes["stickiness.app_cookie.cookie_name"]}
    delay = attributes.get("deregistration_delay.timeout_seconds")
    if str(delay) == "3600":
        rest = {k: v for k, v in attributes.items() if k != "deregistration_delay.timeout_seconds"}
        _moto_modify_target_group_attributes(self, target_group_arn, rest)
        self.target_groups[target_group_arn].attributes[
            "deregistration_delay.timeout_seconds"] = delay
        return
    _moto_modify_target_group_attributes(self, target_group_arn, attributes)


_moto_create_target_group_response = responses.ELBV2Response.create_target_group
_moto_modify_target_group_response = responses.ELBV2Response.modify_target_group


def _create_target_group_response(self):
    """API_CreateTargetGroup.html#HealthCheckPath / API_Matcher.html#GrpcCode: a GRPC target group
    defaults to the path /AWS.ALB/healthcheck and the gRPC code 12; moto gives it "/" and HTTP
    200."""
    p = self._get_params()
    result = _moto_create_target_group_response(self)
    if p.get("ProtocolVersion") == "GRPC":
        for tg in self.elbv2_backend.target_groups.values():
            if tg.name == p.get("Name"):
                if p.get("HealthCheckPath") is None:
                    tg.health_check_path = "/AWS.ALB/healthcheck"
                if p.get("Matcher") is None:
                    tg.matcher = {"GrpcCode": "12"}
    return result


def _modify_target_group_response(self):
    """moto's ModifyTargetGroup reads only Matcher.HttpCode: a GrpcCode would be dropped and the
    controller would find the target group drifted on every reconcile."""
    p = self._get_params()
    tg = self.elbv2_backend.target_groups.get(p.get("TargetGroupArn"))
    matcher = p.get("Matcher") or {}
    if tg is not None and "GrpcCode" in matcher:
        tg.matcher = {"GrpcCode": matcher["GrpcCode"]}
    return _moto_modify_target_group_response(self)


def install():
    responses.ELBV2Response.create_target_group = _create_target_group_response
    responses.ELBV2Response.modify_target_group = _modify_target_group_response
    for name, check in CHECKS.items():
        handler = getattr(responses.ELBV2Response, name)
        setattr(responses.ELBV2Response, name, _checked(name, check, handler))
    models.ELBv2Backend.add_tags = _add_tags_without_moto_limit
    models.ELBv2Backend.modify_target_group_attributes = _modify_target_group_attributes
