"""Sizing from measurement: the page time model, the container settings and the scaling target it gives."""

from __future__ import annotations

import pytest

from pagescribe.aws import sizing


def test_the_page_model_reproduces_the_measurements_it_was_built_from() -> None:
    page = sizing.PageModel(output_tokens=32)
    # 2 cores, the first users' request: image 3.6 s, 940 prompt tokens in 46.5 s; the spot bench: 32 tokens in 6.32 s.
    assert page.prefill_s(2) == pytest.approx(3.6 + 46.5)
    assert page.output_tokens * page.decode_step_s(2, 1) == pytest.approx(6.32)
    # 4 cores (ml.c6i.2xlarge) halve the compute; one decode stream then hits the bandwidth bound of 8 tokens/s.
    assert page.prefill_s(4) == pytest.approx(50.1 / 2)
    assert page.decode_step_s(4, 1) == pytest.approx(1 / 8)


def test_the_default_instance_runs_one_slot_on_its_four_cores_with_the_real_time_budget() -> None:
    spec = sizing.INSTANCE_SPECS[sizing.DEFAULT_INSTANCE_TYPE]
    container = sizing.realtime_container(spec)

    assert container.environment() == {
        "PAGESCRIBE_THREADS": "4",
        "PAGESCRIBE_SLOTS": "1",
        "PAGESCRIBE_CTX": "4096",
        "PAGESCRIBE_TIME_LIMIT_S": "50",
    }
    # 256 tokens take 57 s even alone: past the budget, so the client continues the cut answer once.
    load = sizing.capacity(spec, container)
    assert load.page_s == pytest.approx(57.05, abs=0.01)
    assert load.invocations_per_page == 2
    assert sizing.target_invocations_per_instance(spec) == 1.4


FITTING = sorted(
    name
    for name, spec in sizing.INSTANCE_SPECS.items()
    if spec.memory_gib >= sizing.MODEL_PROCESS_GIB + sizing.SYSTEM_RESERVE_GIB  # check_memory refuses the rest
)


@pytest.mark.parametrize("instance_type", FITTING)
def test_real_time_slots_keep_every_concurrent_page_inside_the_budget(instance_type: str) -> None:
    spec = sizing.INSTANCE_SPECS[instance_type]
    container = sizing.realtime_container(spec)
    page = sizing.DEFAULT_PAGE

    assert container.threads == spec.vcpus // 2  # one thread per physical core
    assert container.time_limit_s == 50
    if container.slots > 1:
        assert page.page_s(spec.cores, container.slots) <= container.time_limit_s
    one_more = container.slots + 1
    assert one_more > sizing.memory_slots(spec) or page.page_s(spec.cores, one_more) > container.time_limit_s
    kv_gib = (container.slots - 1) * sizing.DEFAULT_CTX * sizing.KV_MIB_PER_TOKEN / 1024
    assert sizing.MODEL_PROCESS_GIB + kv_gib + sizing.SYSTEM_RESERVE_GIB <= spec.memory_gib


def test_bigger_instances_run_more_pages_at_once() -> None:
    slots = {t: sizing.realtime_container(sizing.INSTANCE_SPECS[f"ml.c6i.{t}"]).slots for t in ("4xlarge", "16xlarge")}
    assert slots == {"4xlarge": 1, "16xlarge": 5}


def test_async_gets_the_long_budget_and_enough_slots_to_batch_decoding() -> None:
    spec = sizing.INSTANCE_SPECS[sizing.DEFAULT_INSTANCE_TYPE]
    container = sizing.async_container(spec)

    assert container.time_limit_s == 3000 < sizing.ASYNC_INVOCATION_TIMEOUT_S
    assert sizing.async_container(spec, invocation_timeout_s=900).time_limit_s == 750
    # 4 cores decode 2 streams in 0.2 s a step: the bandwidth bound (0.125 s) no longer limits them.
    assert container.slots == 2
    assert sizing.DEFAULT_PAGE.decode_step_s(spec.cores, 2) > 1 / sizing.DEFAULT_PAGE.decode_cap_tokens_s


def test_budget_is_five_sixths_of_the_invocation_timeout() -> None:
    assert sizing.time_budget_s(sizing.REALTIME_INVOCATION_TIMEOUT_S) == 50
    assert sizing.time_budget_s(3600) == 3000


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.c5d.2xlarge", True),
        ("ml.m5d.xlarge", True),
        ("ml.r5d.4xlarge", True),
        ("ml.c6id.2xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.g5.2xlarge", True),
        ("ml.c5.2xlarge", False),
        ("ml.c6i.2xlarge", False),
        ("ml.c6in.2xlarge", False),
        ("ml.c7i.4xlarge", False),
        ("ml.m5.large", False),
        ("ml.inf2.xlarge", False),
    ],
)
def test_local_nvme_types_are_told_apart(instance_type: str, local: bool) -> None:
    assert sizing.has_local_nvme(instance_type) is local


def test_endpoint_size_shows_what_the_stack_sets_and_why() -> None:
    from click.testing import CliRunner

    from pagescribe.cli.endpoint import endpoint_group

    result = CliRunner().invoke(endpoint_group, ["size", "ml.c6i.2xlarge"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "ml.c6i.2xlarge: 8 vCPUs, 4 physical cores, 16 GiB"
    assert lines[1] == (
        "real-time: PAGESCRIBE_THREADS=4 PAGESCRIBE_SLOTS=1 PAGESCRIBE_CTX=4096 PAGESCRIBE_TIME_LIMIT_S=50"
    )
    assert "takes 57.0 s" in lines[2] and "2 requests, the client continues it" in lines[2]
    assert lines[3].endswith("autoscaling target 1.4 invocations/instance/min")
    assert lines[4].startswith("async: PAGESCRIBE_THREADS=4 PAGESCRIBE_SLOTS=2 PAGESCRIBE_CTX=4096")
    assert "PAGESCRIBE_TIME_LIMIT_S=3000" in lines[4]
    assert lines[5] == "storage: EBS (KMS)"


def test_endpoint_size_refuses_an_instance_too_small_for_the_model() -> None:
    from click.testing import CliRunner

    from pagescribe.cli.endpoint import endpoint_group

    result = CliRunner().invoke(endpoint_group, ["size", "ml.c6i.xlarge"])

    assert result.exit_code == 1
    assert "needs 9.5 GiB plus 2 GiB for the system" in result.output


@pytest.mark.parametrize("mode", ["realtime", "async"])
def test_the_server_reads_the_sized_environment_over_its_sagemaker_defaults(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pagescribe.server.settings import ServerSettings

    spec = sizing.INSTANCE_SPECS[sizing.DEFAULT_INSTANCE_TYPE]
    sized = sizing.realtime_container(spec) if mode == "realtime" else sizing.async_container(spec)
    for name, value in sized.environment().items():
        monkeypatch.setenv(name, value)

    settings = ServerSettings(sagemaker=True)  # as in the image: PAGESCRIBE_SAGEMAKER=true

    assert (settings.threads, settings.slots, settings.ctx) == (sized.threads, sized.slots, sized.ctx)
    assert settings.time_limit_s == sized.time_limit_s  # async: 3000 s, not SageMaker's real-time 50 s
