"""moto_server, with ELBv2 SetRulePriorities as AWS does it: one atomic batch.

AWS applies a SetRulePriorities batch as a whole, so rules may trade priorities within it (the
AWS Load Balancer Controller relies on that whenever a rule must go before existing ones: a new
project whose Ingress sorts first, or a `group.order`). moto (5.2.1 and 5.2.5 alike) checks each
new priority against the rules as they were before the batch and answers PriorityInUse, after
which the controller's group never reconciles again. Here the check is made against the state
after the batch: a priority is in use only when a rule outside the batch holds it. Everything else
is moto's own code.

moto_aws_limits (next to this file) makes moto refuse what AWS refuses: the documented ELBv2
constraints on every value jockey's allowlist can admit, each with AWS's error code.

Arguments are moto_server's (e.g. -H 127.0.0.1 -p PORT).
"""

import sys

from moto.elbv2 import models
from moto.elbv2.exceptions import DuplicatePriorityError, PriorityInUseError, RuleNotFoundError
from moto.server import main

import moto_aws_limits


def set_rule_priorities(self, rule_priorities):
    priorities = [str(p["Priority"]) for p in rule_priorities]
    for priority in set(priorities):
        if priorities.count(priority) > 1:
            raise DuplicatePriorityError(priority)
    moving = {p["RuleArn"] for p in rule_priorities}
    rules = []
    for p in rule_priorities:
        found = self.describe_rules(listener_arn=None, rule_arns=[p["RuleArn"]])
        if not found:
            raise RuleNotFoundError()
        rule = found[0]
        listener = self.describe_listeners(None, [rule.listener_arn])[0]
        for other in listener.rules.values():
            if other.arn not in moving and str(other.priority) == str(p["Priority"]):
                raise PriorityInUseError()
        rules.append((rule, p["Priority"]))
    for rule, priority in rules:
        rule.priority = priority
    return [rule for rule, _ in rules]


models.ELBv2Backend.set_rule_priorities = set_rule_priorities
moto_aws_limits.install()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
