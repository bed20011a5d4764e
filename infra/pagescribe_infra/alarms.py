"""CloudWatch alarms on an endpoint variant (5xx, latency near the time budget, CPU, memory) and their SNS topic."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pagescribe_infra.config import PagescribeConfig

INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
MICROSECONDS = 1_000_000  # ModelLatency is reported in microseconds


def encrypted_topic(scope: Construct, construct_id: str, *, key: kms.IKey, display_name: str) -> sns.Topic:
    """An SNS topic encrypted with the stack key that refuses non-TLS publishers."""
    return sns.Topic(scope, construct_id, master_key=key, enforce_ssl=True, display_name=display_name)


def _metric(
    namespace: str, name: str, dims: dict[str, str], statistic: str, minutes: int
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dims,
        statistic=statistic,
        period=Duration.minutes(minutes),
    )


class EndpointAlarms(Construct):
    """Alarms on one variant, all notifying ``topic``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PagescribeConfig,
        endpoint_name: str,
        variant_name: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._name = endpoint_name
        dims = {"EndpointName": endpoint_name, "VariantName": variant_name}
        self.errors_5xx = self._alarm(
            "Invocation5XX",
            _metric(INVOCATION_NAMESPACE, "Invocation5XXErrors", dims, "Sum", 1),
            threshold=1,
            periods=(3, 5),
            description="server errors in 3 of the last 5 minutes",
        )
        self.latency = self._alarm(
            "ModelLatency",
            _metric(INVOCATION_NAMESPACE, "ModelLatency", dims, "p90", 1),
            threshold=config.latency_alarm * MICROSECONDS,
            periods=(3, 3),
            description=f"p90 model latency above {config.latency_alarm:g} s: requests are nearing the "
            f"{config.realtime_container.time_limit_s} s budget and will be cut and continued",
        )
        # CPUUtilization is summed over vCPUs (800% is a busy 8-vCPU instance).
        self.cpu = self._alarm(
            "CpuUtilization",
            _metric(INSTANCE_NAMESPACE, "CPUUtilization", dims, "Average", 5),
            threshold=config.cpu_alarm_percent * config.instance.vcpus,
            periods=(3, 3),
            description=f"CPU above {config.cpu_alarm_percent:g}% for 15 minutes; scaling is not keeping up",
        )
        self.memory = self._alarm(
            "MemoryUtilization",
            _metric(INSTANCE_NAMESPACE, "MemoryUtilization", dims, "Average", 5),
            threshold=config.memory_alarm_percent,
            periods=(2, 2),
            description=f"memory above {config.memory_alarm_percent:g}%",
        )
        for alarm in (self.errors_5xx, self.latency, self.cpu, self.memory):
            alarm.add_alarm_action(actions.SnsAction(topic))

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        periods: tuple[int, int],
        description: str,
    ) -> cloudwatch.Alarm:
        breaching, evaluated = periods
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            datapoints_to_alarm=breaching,
            evaluation_periods=evaluated,
            # No traffic means no errors and no latency, not an unknown state.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self._name}: {description}",
        )


class AlarmTopic(Construct):
    """The topic every alarm notifies, with an optional e-mail subscription."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PagescribeConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = encrypted_topic(
            self, "Topic", key=key, display_name=f"pagescribe {config.endpoint_name} alarms"
        )
        self._allow_alarms()
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

    def _allow_alarms(self) -> None:
        """Let this account's CloudWatch alarms publish here.

        ``enforce_ssl`` gives the topic a policy of its own, which replaces SNS's default one; CloudWatch publishes
        as a service principal, so without this statement no alarm notification would ever be delivered.
        """
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
