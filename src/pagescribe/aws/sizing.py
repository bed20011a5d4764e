"""Instance sizing: what the container runs with on an instance type, and the autoscaling target that follows.

Shared by the CDK app (``infra/``), the boto3 deploy path (:mod:`pagescribe.aws.deploy`) and
``pagescribe endpoint size``, so the three never disagree. ``infra/README.md`` writes the arithmetic out.

Everything comes from one per-page time model (:class:`PageModel`) whose inputs were measured on this project's
2-core machine with the ``llava-1.5-7b`` shape (7B Q4_K_M): a page is an image encode, a prompt evaluation and a
decode. The first two are compute-bound and scale with physical cores; decoding is bounded by compute or by memory
bandwidth, whichever is slower, and concurrent pages share one decode step. From it:

* real-time: as many slots as keep every concurrent page inside the request budget (a page that does not fit even
  alone gets one slot, and the client continues its cut answer with further requests);
* async: enough slots to make decoding compute-bound, since an hour's budget never cuts a page;
* the autoscaling target: the invocations an instance can take per minute, times the target utilization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pagescribe.errors import InvalidRequest

DEFAULT_INSTANCE_TYPE = "ml.c6i.2xlarge"
"""8 vCPUs / 16 GiB: the smallest compute-optimized size that holds the 7B model process with room for slots."""

KV_MIB_PER_TOKEN = 0.5
"""KV cache per context token of LLaVA-1.5-7B (f16: 2 x 32 layers x 4096 x 2 bytes)."""

DEFAULT_CTX = 4096
"""Context of one slot: the ~940-token page prompt plus answers of up to ~3,000 tokens (convert asks 1,024)."""

MODEL_PROCESS_GIB = 9.5
"""Peak memory of the server with one slot of ``DEFAULT_CTX``: 7.5 GiB measured without the KV cache (9.56 GiB
peak RSS at 2 slots x 2,048 tokens, ``bench/results/throughput-llava-1.5-7b-spot.json``) plus 2 GiB of KV cache."""

SYSTEM_RESERVE_GIB = 2.0
"""Left for the OS, the SageMaker agents and the HTTP server around the engine."""

MAX_SLOTS = 8
"""More concurrent pages than this gain nothing on CPU: decoding turns compute-bound long before."""

STARTUP_HEALTH_CHECK_TIMEOUT_S = 900
"""From container start to the first 200 on /ping: loading ~4-5 GB of GGUF from a cold EBS volume."""

MODEL_DOWNLOAD_TIMEOUT_S = 1200
"""Copying ~4-5 GB from S3 to the instance; generous because a slow first copy must not fail the deploy."""

VOLUME_SIZE_GB = 30
"""EBS volume per instance: at least twice the model files, so a tar.gz can be extracted beside itself."""

REALTIME_INVOCATION_TIMEOUT_S = 60
"""SageMaker real-time hosting ends an invocation after 60 s."""

ASYNC_INVOCATION_TIMEOUT_S = 3600
"""The longest ``InvocationTimeoutSeconds`` InvokeEndpointAsync accepts (its default is 900)."""

BUDGET_SHARE = 5 / 6
"""Share of an invocation's timeout the container may spend on a request (60 s -> 50 s, 3600 s -> 3000 s); the rest
covers queueing in front of the container, the answer's serialization and its transfer."""

TARGET_UTILIZATION = 0.7
"""Share of the estimated capacity the autoscaler aims at; the rest absorbs bursts while instances boot."""


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """The parts of an instance type that sizing needs; ``physical_cores`` 0 means half the vCPUs (two threads a
    core, as on every x86 family in :data:`INSTANCE_SPECS`)."""

    vcpus: int
    memory_gib: float
    physical_cores: int = 0

    @property
    def cores(self) -> int:
        """Physical cores: llama.cpp runs one thread per core; the second hyperthread adds nothing."""
        return self.physical_cores or max(1, self.vcpus // 2)


def _family(name: str, sizes: dict[str, tuple[int, float]]) -> dict[str, InstanceSpec]:
    return {f"ml.{name}.{size}": InstanceSpec(v, m) for size, (v, m) in sizes.items()}


_C_SIZES = {"large": (2, 4.0), "xlarge": (4, 8.0), "2xlarge": (8, 16.0), "4xlarge": (16, 32.0)}
_M_SIZES = {"large": (2, 8.0), "xlarge": (4, 16.0), "2xlarge": (8, 32.0), "4xlarge": (16, 64.0)}
_R_SIZES = {"large": (2, 16.0), "xlarge": (4, 32.0), "2xlarge": (8, 64.0), "4xlarge": (16, 128.0)}
_C5_SIZES = {**_C_SIZES, "9xlarge": (36, 72.0), "18xlarge": (72, 144.0)}
_C6_SIZES = {**_C_SIZES, "8xlarge": (32, 64.0), "12xlarge": (48, 96.0), "16xlarge": (64, 128.0)}
_M5_SIZES = {**_M_SIZES, "12xlarge": (48, 192.0)}

INSTANCE_SPECS: dict[str, InstanceSpec] = {
    **_family("c5", _C5_SIZES),
    **_family("c5d", _C5_SIZES),
    **_family("c6i", _C6_SIZES),
    **_family("c7i", _C6_SIZES),
    **_family("m5", _M5_SIZES),
    **_family("m5d", _M5_SIZES),
    **_family("m6i", {**_M_SIZES, "8xlarge": (32, 128.0)}),
    **_family("r5d", {**_R_SIZES, "12xlarge": (48, 384.0)}),
}
"""vCPUs and memory of the CPU instance types this project is sized for (AWS instance type tables)."""

LOCAL_NVME_WITHOUT_D = frozenset({"g5", "g6", "g6e", "p5"})
"""Families with an NVMe instance store whose names lack the ``d`` (the rest follow EC2's naming, below)."""


def has_local_nvme(instance_type: str) -> bool:
    """Whether ``instance_type`` comes with local NVMe instance storage instead of an EBS ML volume.

    EC2's naming says so with a ``d`` among the attribute letters after the generation digit: ``ml.c5d``,
    ``ml.m5d``, ``ml.r5d``, ``ml.c6gd``, ``ml.g4dn``, ``ml.p4d`` have it; ``ml.c5``, ``ml.c6i``, ``ml.c6in`` do not.
    A few GPU families have it without the letter (:data:`LOCAL_NVME_WITHOUT_D`). SageMaker encrypts that storage
    in hardware and refuses an endpoint config with ``KmsKeyId`` for such types, and sizes the storage itself.
    """
    family = instance_type.removeprefix("ml.").split(".", 1)[0]
    generation = next((i for i, char in enumerate(family) if char.isdigit()), len(family))
    attributes = family[generation:].lstrip("0123456789")
    return "d" in attributes or family in LOCAL_NVME_WITHOUT_D


def instance_spec(
    instance_type: str, *, vcpus: int | None = None, memory_gib: float | None = None, physical_cores: int | None = None
) -> InstanceSpec:
    """The spec of ``instance_type``; ``vcpus``/``memory_gib``/``physical_cores`` override it or supply unknown
    types."""
    known = INSTANCE_SPECS.get(instance_type)
    v = vcpus if vcpus is not None else (known.vcpus if known else None)
    m = memory_gib if memory_gib is not None else (known.memory_gib if known else None)
    if v is None or m is None:
        raise InvalidRequest(
            f"unknown instance type {instance_type!r}: give its vCPUs and memory explicitly",
            param="instance_type",
        )
    return InstanceSpec(v, m, physical_cores or 0)


def check_memory(spec: InstanceSpec, *, process_gib: float = MODEL_PROCESS_GIB) -> None:
    """Refuse an instance whose memory cannot hold the model process plus the system reserve."""
    needed = process_gib + SYSTEM_RESERVE_GIB
    if spec.memory_gib < needed:
        raise InvalidRequest(
            f"instance has {spec.memory_gib:g} GiB but the model process needs {process_gib:g} GiB "
            f"plus {SYSTEM_RESERVE_GIB:g} GiB for the system ({needed:g} GiB)",
            param="instance_type",
        )


@dataclass(frozen=True, slots=True)
class PageModel:
    """What one page costs the ``llava-1.5-7b`` model (7B Q4_K_M), in CPU time, from measurements on 2 cores.

    Measured here (2 cores, one page alone): the first users' request evaluated 940 prompt tokens in 46.5 s after a
    3.6 s image encode (issue 17); ``bench/results/throughput-llava-1.5-7b-spot.json`` decoded 32 tokens in 6.32 s.
    Extrapolated: that compute scales with physical cores, and a decode step never beats the memory-bandwidth bound
    of ``decode_cap_tokens_s`` (7-9 tokens/s are reported for 7B models on server CPUs; this machine, at 5 tokens/s,
    is compute-bound and cannot show it). ``output_tokens`` is the answer a page is sized for.
    """

    image_core_s: float = 3.6 * 2
    prompt_tokens: int = 940
    prompt_tokens_per_core_s: float = 940 / (46.5 * 2)
    output_tokens: int = 256
    decode_core_s_per_token: float = 6.32 * 2 / 32
    decode_cap_tokens_s: float = 8.0

    def prefill_s(self, cores: int) -> float:
        """Image encode plus prompt evaluation of one page with ``cores`` to itself."""
        return (self.image_core_s + self.prompt_tokens / self.prompt_tokens_per_core_s) / cores

    def decode_step_s(self, cores: int, streams: int) -> float:
        """One decode step of ``streams`` pages together: bandwidth-bound for few streams, then compute-bound."""
        return max(1 / self.decode_cap_tokens_s, streams * self.decode_core_s_per_token / cores)

    def page_s(self, cores: int, concurrent: int = 1) -> float:
        """Seconds a page takes when ``concurrent`` pages arrive together and share the instance."""
        return concurrent * self.prefill_s(cores) + self.output_tokens * self.decode_step_s(cores, concurrent)

    def compute_bound_streams(self, cores: int) -> int:
        """The fewest concurrent pages at which a decode step stops being bandwidth-bound (more add nothing)."""
        return max(1, math.ceil(cores / (self.decode_core_s_per_token * self.decode_cap_tokens_s)))


DEFAULT_PAGE = PageModel()


@dataclass(frozen=True, slots=True)
class ContainerSizing:
    """What the container runs with on one instance: the ``PAGESCRIBE_*`` settings the model's environment sets."""

    threads: int
    slots: int
    ctx: int
    time_limit_s: int

    def environment(self) -> dict[str, str]:
        """The settings as container environment variables (``ContainerDefinition.Environment``)."""
        return {
            "PAGESCRIBE_THREADS": str(self.threads),
            "PAGESCRIBE_SLOTS": str(self.slots),
            "PAGESCRIBE_CTX": str(self.ctx),
            "PAGESCRIBE_TIME_LIMIT_S": str(self.time_limit_s),
        }


def time_budget_s(invocation_timeout_s: int) -> int:
    """The container's budget per request for an invocation timeout (``BUDGET_SHARE`` of it, whole seconds)."""
    if invocation_timeout_s < 1:
        raise InvalidRequest("the invocation timeout must be positive", param="invocation_timeout_s")
    return max(1, math.floor(invocation_timeout_s * BUDGET_SHARE))


def memory_slots(spec: InstanceSpec, *, ctx: int = DEFAULT_CTX, process_gib: float = MODEL_PROCESS_GIB) -> int:
    """How many slots of ``ctx`` tokens the instance's memory holds: one in ``process_gib``, each further one its
    KV cache (at least one; :func:`check_memory` refuses instances without room for it)."""
    per_slot_gib = ctx * KV_MIB_PER_TOKEN / 1024
    spare = spec.memory_gib - SYSTEM_RESERVE_GIB - process_gib
    return max(1, min(MAX_SLOTS, 1 + math.floor(spare / per_slot_gib)))


def realtime_container(
    spec: InstanceSpec,
    *,
    page: PageModel = DEFAULT_PAGE,
    ctx: int = DEFAULT_CTX,
    process_gib: float = MODEL_PROCESS_GIB,
) -> ContainerSizing:
    """Real-time sizing: the most slots (within memory) at which every concurrent page still fits the budget."""
    budget = time_budget_s(REALTIME_INVOCATION_TIMEOUT_S)
    most = memory_slots(spec, ctx=ctx, process_gib=process_gib)
    fitting = [k for k in range(1, most + 1) if page.page_s(spec.cores, k) <= budget]
    return ContainerSizing(threads=spec.cores, slots=max(fitting, default=1), ctx=ctx, time_limit_s=budget)


def async_container(
    spec: InstanceSpec,
    *,
    invocation_timeout_s: int = ASYNC_INVOCATION_TIMEOUT_S,
    page: PageModel = DEFAULT_PAGE,
    ctx: int = DEFAULT_CTX,
    process_gib: float = MODEL_PROCESS_GIB,
) -> ContainerSizing:
    """Async sizing: the long budget, and as many slots as make decoding compute-bound (within memory)."""
    slots = min(page.compute_bound_streams(spec.cores), memory_slots(spec, ctx=ctx, process_gib=process_gib))
    return ContainerSizing(
        threads=spec.cores, slots=slots, ctx=ctx, time_limit_s=time_budget_s(invocation_timeout_s)
    )


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one instance sustains with a given container sizing, by the page model."""

    page_s: float
    """Seconds a page takes with every slot busy."""
    pages_per_minute: float
    invocations_per_page: int
    """A page longer than the budget is cut and continued by the client: each continuation is an invocation."""

    @property
    def invocations_per_minute(self) -> float:
        return self.pages_per_minute * self.invocations_per_page


def capacity(spec: InstanceSpec, container: ContainerSizing, *, page: PageModel = DEFAULT_PAGE) -> Capacity:
    """Sustained pages and invocations per minute of one instance with every slot busy."""
    seconds = page.page_s(spec.cores, container.slots)
    return Capacity(
        page_s=seconds,
        pages_per_minute=60.0 * container.slots / seconds,
        invocations_per_page=max(1, math.ceil(seconds / container.time_limit_s)),
    )


def target_invocations_per_instance(
    spec: InstanceSpec,
    container: ContainerSizing | None = None,
    *,
    page: PageModel = DEFAULT_PAGE,
    utilization: float = TARGET_UTILIZATION,
) -> float:
    """Target for ``SageMakerVariantInvocationsPerInstance`` (per minute; one page per call), rounded down."""
    if not 0 < utilization <= 1:
        raise InvalidRequest("utilization must be in (0, 1]", param="utilization")
    sized = container or realtime_container(spec, page=page)
    raw = capacity(spec, sized, page=page).invocations_per_minute * utilization
    # Round down to one decimal: rounding up would aim above the stated headroom.
    return max(0.1, math.floor(raw * 10) / 10)
