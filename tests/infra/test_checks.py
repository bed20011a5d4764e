"""cfn-lint and cdk-nag (AwsSolutions) over every synthesized variant."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cdk_synth import Synth
from cfnlint.api import lint

VARIANTS = ("default", "full", "existing", "nvme", "bootstrap")
REGIONS = ["us-east-1", "eu-west-1"]


def _errors(template: dict[str, Any]) -> list[str]:
    matches = lint(json.dumps(template), regions=REGIONS)
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id[0] == "E"]


def _aws_solutions(synth: Synth) -> dict[str, Any]:
    """The AwsSolutions part of the validation report; CDK leaves it out when there is nothing to say."""
    reports = [p for p in synth.report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert len(reports) <= 1
    empty = {
        "pluginName": "AwsSolutions",
        "conclusion": "success",
        "violations": [],
        "suppressedViolations": [],
    }
    return reports[0] if reports else empty


@pytest.mark.parametrize("variant", VARIANTS)
def test_template_passes_cfn_lint_without_errors(all_synths: dict[str, Synth], variant: str) -> None:
    assert _errors(all_synths[variant].template) == []


def test_cfn_lint_catches_a_bad_instance_type(default_synth: Synth) -> None:
    """Guards the test above: the linter knows SageMaker's schema, so it would see a real mistake."""
    broken = copy.deepcopy(default_synth.template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            resource["Properties"]["ProductionVariants"][0]["InstanceType"] = "ml.c6i.3xlarge"
    assert any("ml.c6i.3xlarge" in e for e in _errors(broken))


@pytest.mark.parametrize("variant", VARIANTS)
def test_cdk_nag_has_no_unacknowledged_findings(all_synths: dict[str, Synth], variant: str) -> None:
    synth = all_synths[variant]
    # An unacknowledged finding makes synth fail (ValidationFailed), as it would for `cdk deploy`.
    assert synth.error is None, synth.error
    report = _aws_solutions(synth)
    assert report["violations"] == []
    assert report["conclusion"] == "success"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_acknowledgment_carries_a_written_reason(all_synths: dict[str, Synth], variant: str) -> None:
    for finding in _aws_solutions(all_synths[variant])["suppressedViolations"]:
        assert len(finding["reason"].split()) >= 5, finding
    # The same reasons are written into the template metadata, for auditors who only see CloudFormation.
    for resource in all_synths[variant].template["Resources"].values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule["reason"].split()) >= 5, rule


def test_acknowledgments_are_few_and_named_individually(default_synth: Synth) -> None:
    """Also proves the AwsSolutions pack ran: its report lists what it found and why each is accepted."""
    (report,) = [p for p in default_synth.report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    rules = sorted(f["ruleName"] for f in report["suppressedViolations"])
    # Only wildcard findings on the execution role; nothing about encryption, logging or public access.
    assert rules and all(r.startswith("AwsSolutions-IAM5[") for r in rules), rules
