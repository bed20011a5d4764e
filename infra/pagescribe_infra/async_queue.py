"""An optional SQS queue that collects the async endpoint's success and error notifications for batch clients.

A client converting a corpus through the async endpoint polls one queue instead of every output object: each
message body is SageMaker's notification itself (raw delivery), whose ``invocationStatus`` says whether the request
completed (``responseParameters.outputLocation``) or failed (``failureReason``). Messages a client keeps failing to
handle move to a dead-letter queue instead of coming back forever. Only the two topics may send (the queue's
policy), and only over TLS.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

RETENTION = Duration.days(14)
"""The longest SQS keeps a message: a batch may be collected days after it was submitted."""
MAX_RECEIVES = 5


def _queue(
    scope: Construct, construct_id: str, key: kms.IKey, dead_letters: sqs.IQueue | None = None
) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=RETENTION,
        visibility_timeout=Duration.minutes(2),
        dead_letter_queue=(
            sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=MAX_RECEIVES) if dead_letters else None
        ),
    )


class NotificationQueue(Construct):
    """``queue`` (KMS, TLS only) subscribed to ``topics`` with raw delivery, with a dead-letter queue."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, topics: Sequence[sns.ITopic]
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = _queue(self, "DeadLetters", key)
        self.queue = _queue(self, "Queue", key, self.dead_letters)
        sender = iam.ServicePrincipal("sns.amazonaws.com")
        added = self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAsyncTopics",
                principals=[sender],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [topic.topic_arn for topic in topics]}},
            )
        )
        _let_sns_encrypt(key)
        for index, topic in enumerate(topics):
            subscription = sns.Subscription(
                self,
                f"Subscription{index}",
                topic=topic,
                endpoint=self.queue.queue_arn,
                protocol=sns.SubscriptionProtocol.SQS,
                raw_message_delivery=True,
            )
            # Messages published before the queue policy exists would be dropped.
            if added.policy_dependable is not None:
                subscription.node.add_dependency(added.policy_dependable)


def _let_sns_encrypt(key: kms.IKey) -> None:
    """Let SNS use the key for messages it delivers to this account's queues.

    The topics are encrypted with the same key, so the statement cannot name them (the key would depend on the
    topics and the topics on the key); it names this account's SNS topics instead. An imported key's policy is its
    owner's: it needs the same statement (infra/README.md).
    """
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowSnsToEncryptedQueues",
            principals=[iam.ServicePrincipal("sns.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:sns:{stack.region}:{stack.account}:*"},
            },
        )
    )
