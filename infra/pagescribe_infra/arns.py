"""ARNs of things the stack names but CloudFormation does not return (SageMaker endpoints by name)."""

from __future__ import annotations

from aws_cdk import Stack
from constructs import IConstruct


def endpoint_arn(scope: IConstruct, endpoint_name: str) -> str:
    """The ARN of a SageMaker endpoint in this stack's account and region (SageMaker spells names lower case)."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:endpoint/{endpoint_name.lower()}"
