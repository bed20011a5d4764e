"""Acknowledging cdk-nag (v3) findings: each acknowledgment names one finding and says why it is fine."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge ``{rule id (without the pack prefix): reason}`` on ``scope`` and its children."""
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"{PACK}::{rule}", reason=reason) for rule, reason in findings.items())
    )


def wildcard_resource(scope: IConstruct, arn: str) -> str:
    """The IAM5 finding id for a wildcard resource ARN, spelled the way cdk-nag prints it.

    cdk-nag renders ``Ref``/``Fn::GetAtt`` as ``<Name>``/``<Name.Attr>`` inside the joined string; v3 has no
    prefix matching, so each wildcard resource needs its exact id.
    """
    return f"AwsSolutions-IAM5[Resource::{_render(Stack.of(scope).resolve(arn))}]"


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            return f"<{name}.{attribute}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_render(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag resource id")
