"""Instance sizing and the autoscaling arithmetic, shared by the CDK app (``infra/``) and the boto3 path.

The default target for ``SageMakerVariantInvocationsPerInstance`` (invocations per instance per *minute*)
comes from one measured figure: on 2 vCPUs a 7B Q4_K_M vision model transcribes one page (576 image
tokens, ~300 prompt tokens, 32-256 output tokens) in 40-70 s. We take the slow end, scale by vCPUs, and
aim at 70% of the result so a burst queues briefly instead of timing out. ``infra/README.md`` writes the
arithmetic out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pagescribe.errors import InvalidRequest

DEFAULT_INSTANCE_TYPE = "ml.c6i.2xlarge"
"""8 vCPUs / 16 GiB: the smallest compute-optimized size that holds a ~9 GB llama.cpp process."""

MODEL_PROCESS_GIB = 9.0
"""Resident size of llama.cpp for a 7B Q4_K_M model plus its mmproj, KV cache and compute buffers."""

SYSTEM_RESERVE_GIB = 2.0
"""Left for the OS, the SageMaker agents and the HTTP server around the engine."""

STARTUP_HEALTH_CHECK_TIMEOUT_S = 900
"""From container start to the first 200 on /ping: loading ~4-5 GB of GGUF from a cold EBS volume."""

MODEL_DOWNLOAD_TIMEOUT_S = 1200
"""Copying ~4-5 GB from S3 to the instance; generous because a slow first copy must not fail the deploy."""

VOLUME_SIZE_GB = 30
"""EBS volume per instance: at least twice the model files, so a tar.gz can be extracted beside itself."""

MEASURED_VCPUS = 2
MEASURED_SECONDS_PER_PAGE = 70.0
"""Slow end of the 40-70 s per page measured on 2 vCPUs; the fast end would overstate capacity."""

TARGET_UTILIZATION = 0.7
"""Share of the estimated capacity the autoscaler aims at; the rest absorbs bursts while instances boot."""


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """The parts of an instance type that sizing needs."""

    vcpus: int
    memory_gib: float


def _family(name: str, sizes: dict[str, tuple[int, float]]) -> dict[str, InstanceSpec]:
    return {f"ml.{name}.{size}": InstanceSpec(v, m) for size, (v, m) in sizes.items()}


_C_SIZES = {"large": (2, 4.0), "xlarge": (4, 8.0), "2xlarge": (8, 16.0), "4xlarge": (16, 32.0)}
_M_SIZES = {"large": (2, 8.0), "xlarge": (4, 16.0), "2xlarge": (8, 32.0), "4xlarge": (16, 64.0)}

INSTANCE_SPECS: dict[str, InstanceSpec] = {
    **_family("c5", {**_C_SIZES, "9xlarge": (36, 72.0), "18xlarge": (72, 144.0)}),
    **_family("c6i", {**_C_SIZES, "8xlarge": (32, 64.0), "12xlarge": (48, 96.0), "16xlarge": (64, 128.0)}),
    **_family("c7i", {**_C_SIZES, "8xlarge": (32, 64.0), "12xlarge": (48, 96.0), "16xlarge": (64, 128.0)}),
    **_family("m5", {**_M_SIZES, "12xlarge": (48, 192.0)}),
    **_family("m6i", {**_M_SIZES, "8xlarge": (32, 128.0)}),
}
"""vCPUs and memory of the CPU instance types this project is sized for (AWS instance type tables)."""


def instance_spec(
    instance_type: str, *, vcpus: int | None = None, memory_gib: float | None = None
) -> InstanceSpec:
    """The spec of ``instance_type``; ``vcpus``/``memory_gib`` override it or supply unknown types."""
    known = INSTANCE_SPECS.get(instance_type)
    v = vcpus if vcpus is not None else (known.vcpus if known else None)
    m = memory_gib if memory_gib is not None else (known.memory_gib if known else None)
    if v is None or m is None:
        raise InvalidRequest(
            f"unknown instance type {instance_type!r}: give its vCPUs and memory explicitly",
            param="instance_type",
        )
    return InstanceSpec(v, m)


def check_memory(spec: InstanceSpec, *, process_gib: float = MODEL_PROCESS_GIB) -> None:
    """Refuse an instance whose memory cannot hold the model process plus the system reserve."""
    needed = process_gib + SYSTEM_RESERVE_GIB
    if spec.memory_gib < needed:
        raise InvalidRequest(
            f"instance has {spec.memory_gib:g} GiB but the model process needs {process_gib:g} GiB "
            f"plus {SYSTEM_RESERVE_GIB:g} GiB for the system ({needed:g} GiB)",
            param="instance_type",
        )


def pages_per_minute(
    vcpus: int,
    *,
    seconds_per_page: float = MEASURED_SECONDS_PER_PAGE,
    measured_vcpus: int = MEASURED_VCPUS,
) -> float:
    """Estimated sustained pages per minute of one instance, assuming throughput grows linearly with vCPUs."""
    if vcpus < 1 or seconds_per_page <= 0 or measured_vcpus < 1:
        raise InvalidRequest("vCPUs and seconds per page must be positive")
    seconds_here = seconds_per_page * measured_vcpus / vcpus
    return 60.0 / seconds_here


def target_invocations_per_instance(
    vcpus: int,
    *,
    seconds_per_page: float = MEASURED_SECONDS_PER_PAGE,
    utilization: float = TARGET_UTILIZATION,
) -> float:
    """Target for ``SageMakerVariantInvocationsPerInstance`` (per minute; one page per call), rounded down."""
    if not 0 < utilization <= 1:
        raise InvalidRequest("utilization must be in (0, 1]", param="utilization")
    raw = pages_per_minute(vcpus, seconds_per_page=seconds_per_page) * utilization
    # Round down to one decimal: rounding up would aim above the stated headroom.
    return max(0.1, int(raw * 10) / 10)
