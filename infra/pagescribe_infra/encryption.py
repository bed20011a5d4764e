"""One customer managed KMS key for all the stack stores: model files, volumes, logs, topics, captures."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from pagescribe_infra.config import PagescribeConfig


class EncryptionKey(Construct):
    """A rotating CMK (or an existing key), usable by CloudWatch Logs and by alarms publishing to SNS."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PagescribeConfig) -> None:
        super().__init__(scope, construct_id)
        self.key: kms.IKey
        if config.kms_key_arn:
            # An imported key's policy is the owner's to manage; we only reference it.
            self.key = kms.Key.from_key_arn(self, "Key", config.kms_key_arn)
            return
        key = kms.Key(
            self,
            "Key",
            description=f"pagescribe {config.endpoint_name}: model files, volumes, logs, topics",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_logs(key)
        # Alarms publish to KMS-encrypted topics only if CloudWatch may use the key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.key = key

    @staticmethod
    def _allow_logs(key: kms.Key) -> None:
        stack = Stack.of(key)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
