"""Model families as data: one entry per family of document vision models pagescribe knows how to run.

A family says which text architecture(s) and projector type make it (how it is detected from a GGUF pair:
``general.architecture`` and ``clip.projector_type``), the chat template to use when the GGUF carries none, where
the page image goes relative to the instruction, the recommended document prompt and sampling, how the page is
sized for the projector, whether special tokens are part of the answer (DocTags are), what turns the answer into
the page's text, and where users fetch the published GGUF files. ``--family`` overrides the detection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal

import numpy as np
from gguf import TokenType

from pagescribe.errors import ModelInvalid
from pagescribe.models.files import ModelFiles
from pagescribe.models.postprocess import PostProcess
from pagescribe.models.presets import get_preset
from pagescribe.models.shapes import VisionShape
from pagescribe.prompts import DEFAULT_PROMPT, Prompt, family_prompt, load_prompt
from pagescribe.types import SamplingParams

#: A US-letter page rendered at 150 DPI: the page the image-token figures refer to.
LETTER_PAGE = (1275, 1650)

ImageKind = Literal["fixed", "dynamic", "tiles", "longest_edge"]


@dataclass(frozen=True, slots=True)
class ImagePolicy:
    """How a page is sized for the projector.

    ``fixed``: the projector squeezes any image into one square (LLaVA 336 px, Gemma 3 896 px). ``dynamic``: one
    token per patch group of the image as given (Qwen2.5-VL), so pagescribe first fits the page within
    ``default_max_side`` (a request's ``image_max_side`` may choose another side within ``min_side`` and
    ``max_side_limit``: fewer tokens or more detail). ``tiles``: the page is resized to the projector's longest
    edge and cut into square tiles plus an overview (idefics3). ``longest_edge``: resized to the projector's
    longest edge, then one token per patch group (LightOnOCR). For the last three the projector decides the token
    count; a smaller ``image_max_side`` only lowers the detail it sees.
    """

    kind: ImageKind
    default_max_side: int
    max_side_limit: int
    min_side: int = 28

    def max_side(self, requested: int | None) -> int:
        """The longest side a page is fitted within for a request asking ``requested`` (None: the default)."""
        if requested is None:
            return self.default_max_side
        return max(self.min_side, min(self.max_side_limit, requested))


@dataclass(frozen=True, slots=True)
class TokenizerSpec:
    """What a synthesized model's tokenizer is (the family's real one: its model, pre-tokenizer and markers)."""

    model: Literal["llama", "gpt2"]
    pre: str
    tail: tuple[str, ...]  # control tokens after the normal pieces: chat and image markers, DocTags
    bos: str
    eos: str
    pad: str
    add_bos: bool
    head: tuple[tuple[str, TokenType], ...] = ()  # SPM only: the leading special tokens
    add_space_prefix: bool = True  # SPM only


@dataclass(frozen=True, slots=True)
class Published:
    """A GGUF pair as published on the model hub: what ``pagescribe model pull`` fetches."""

    repo: str
    quant: str
    text_mb: int
    mmproj_mb: int
    note: str = ""

    @property
    def spec(self) -> str:
        return f"{self.repo}:{self.quant}"


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    title: str
    text_archs: tuple[str, ...]
    projector: str
    template: str  # packaged template (src/pagescribe/templates/), used when the GGUF carries none
    prompt: str | None  # packaged prompt name; None: the image alone is the request (LightOnOCR)
    image_first: bool  # whether the page image comes before the instruction
    max_tokens: int
    temperature: float
    top_p: float
    image: ImagePolicy
    special_output: bool  # special tokens are part of the answer (DocTags): detokenized, not dropped
    postprocess: PostProcess
    tokenizer: TokenizerSpec
    tiny_preset: str
    full_preset: str
    published: tuple[Published, ...]
    best_for: str

    def chat_template(self) -> str:
        return resources.files("pagescribe").joinpath(f"templates/{self.template}").read_text(encoding="utf-8")

    def document_prompt(self) -> Prompt:
        """The family's recommended instruction for a page (empty for a model that takes the image alone)."""
        if self.prompt is None:
            return Prompt(id=f"{self.name}-image-only", text="")
        return load_prompt(self.prompt) if self.prompt == DEFAULT_PROMPT else family_prompt(self.prompt)

    def sampling(self, **given: object) -> SamplingParams:
        """The family's recommended sampling for pages (greedy or its own), with a fixed seed; ``given`` values
        that are not None win."""
        values: dict[str, object] = {
            "max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p, "seed": 0,
        }
        values |= {k: v for k, v in given.items() if v is not None}
        return SamplingParams(**values)  # type: ignore[arg-type]

    def letter_page_tokens(self) -> int:
        """Image tokens for a US-letter page at the default resolution, at the full-size preset's shapes."""
        width, height = fit_within(*LETTER_PAGE, self.image.default_max_side)
        return image_tokens(get_preset(self.full_preset).vision, width, height)


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size an image takes when its longer side is brought down to ``max_side`` (never up)."""
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_tokens(v: VisionShape, width: int, height: int) -> int:
    """How many embeddings the projector makes of a ``width`` x ``height`` image: libmtmd's preprocessing
    (``tools/mtmd/mtmd-image.cpp``, in its float32 arithmetic) and ``clip_n_output_tokens`` (``clip.cpp``)."""
    p = v.patch_size
    if v.projector == "mlp":
        return v.n_patches
    if v.projector == "gemma3":
        return (v.image_size // p // v.merge) ** 2
    align = p * v.merge
    if v.projector == "qwen2.5vl_merger":
        w, h = _smart_resize(width, height, align, min_pixels=8 * align**2, max_pixels=4096 * align**2)
        return (w // align) * (h // align)
    if v.projector == "lightonocr":
        scale = min(_f32(v.image_size) / _f32(width), _f32(v.image_size) / _f32(height))
        return _ceil_to(_f32(width) * scale, align) // align * (_ceil_to(_f32(height) * scale, align) // align)
    if v.projector == "idefics3":
        longest, tile = v.preproc_image_size, v.image_size
        if width >= height:
            w, h = longest, int(longest / (width / height))
            h += h % 2
        else:
            w, h = int(longest * (width / height)), longest
            w += w % 2
        tiles = math.ceil(w / tile) * math.ceil(h / tile)
        return (tiles + 1) * (tile // p // v.merge) ** 2  # + the overview image
    raise ValueError(f"no token count for projector {v.projector}")


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _ceil_to(x: np.float32, factor: int) -> int:
    return int(np.ceil(x / _f32(factor))) * factor


def _smart_resize(width: int, height: int, align: int, *, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """``calc_size_preserved_ratio`` of mtmd-image.cpp: round to the alignment, then fit the pixel budget."""
    def rounded(x: int) -> int:  # std::round: halves away from zero (numpy's round goes to even)
        q = float(_f32(x) / _f32(align))
        return max(align, (math.floor(q) + (q - math.floor(q) >= 0.5)) * align)

    w, h = rounded(width), rounded(height)
    if w * h > max_pixels:
        beta = np.sqrt(_f32(height) * _f32(width) / _f32(max_pixels))
        w = max(align, int(np.floor(_f32(width) / beta / _f32(align))) * align)
        h = max(align, int(np.floor(_f32(height) / beta / _f32(align))) * align)
    elif w * h < min_pixels:
        beta = np.sqrt(_f32(min_pixels) / (_f32(height) * _f32(width)))
        w, h = _ceil_to(_f32(width) * beta, align), _ceil_to(_f32(height) * beta, align)
    return w, h


# -- the families ------------------------------------------------------------------------------------------------

_SPM_HEAD = (("<unk>", TokenType.UNKNOWN), ("<s>", TokenType.CONTROL), ("</s>", TokenType.CONTROL))
_QWEN_TAIL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>")
_DOCTAG_ELEMENTS = (
    "doctag", "otsl", "chart", "ordered_list", "unordered_list", "caption", "footnote", "formula", "list_item",
    "page_footer", "page_header", "picture", "table", "text", "title", "document_index", "code", "checkbox_selected",
    "checkbox_unselected", "form", "key_value_region", "paragraph", "reference", "inline",
    *(f"section_header_level_{i}" for i in range(6)),
)
#: DocTags as granite-docling's vocabulary holds them (docling-core's ``DocumentToken``): element tags, OTSL table
#: cells and the 500 location tokens, plus the page break.
DOCTAGS = (
    *(tag for name in _DOCTAG_ELEMENTS for tag in (f"<{name}>", f"</{name}>")),
    "<page_break>", "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>", "<nl>", "<ched>", "<rhed>", "<srow>",
    *(f"<loc_{i}>" for i in range(500)),
)
_GRANITE_TAIL = (
    "<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<fake_token_around_image>", "<global-img>", "<image>",
    "<end_of_utterance>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)), *DOCTAGS,
)

FAMILIES: Mapping[str, Family] = MappingProxyType({
    "llava-1.5": Family(
        name="llava-1.5", title="LLaVA-1.5", text_archs=("llama",), projector="mlp", template="llava-1.5.jinja",
        prompt="document", image_first=False, max_tokens=1024, temperature=0.0, top_p=1.0,
        image=ImagePolicy("fixed", 2048, 2048), special_output=False, postprocess="none",
        tokenizer=TokenizerSpec("llama", "default", (), "<s>", "</s>", "<unk>", True, _SPM_HEAD),
        tiny_preset="tiny", full_preset="llava-1.5-7b",
        published=(Published("second-state/Llava-v1.5-7B-GGUF", "Q4_K_M", 4081, 624),),
        best_for="describing slides and diagrams in prose (the first users' prompt); 336 px, so small print is "
                 "lost",
    ),
    "qwen2.5-vl": Family(
        name="qwen2.5-vl", title="Qwen2.5-VL", text_archs=("qwen2vl",), projector="qwen2.5vl_merger",
        template="qwen2.5-vl.jinja", prompt="document-qwen2.5-vl", image_first=True, max_tokens=2048,
        temperature=0.0, top_p=1.0, image=ImagePolicy("dynamic", 1344, 3584, 56), special_output=False,
        postprocess="none",
        tokenizer=TokenizerSpec("gpt2", "qwen2", _QWEN_TAIL, "<|endoftext|>", "<|im_end|>", "<|endoftext|>", False),
        tiny_preset="qwen2.5-vl-tiny", full_preset="qwen2.5-vl-3b",
        published=(
            Published("ggml-org/Qwen2.5-VL-3B-Instruct-GGUF", "Q4_K_M", 1930, 1340),
            Published(
                "ggml-org/Qwen2.5-VL-7B-Instruct-GGUF", "Q4_K_M", 4680, 1350, "7B: olmOCR-2 is a fine-tune of it"
            ),
        ),
        best_for="dense text, forms and tables read at high resolution (one token per 28x28 px); the most "
                 "accurate here, and the slowest per page on CPU",
    ),
    "granite-docling": Family(
        name="granite-docling", title="granite-docling-258M", text_archs=("llama",), projector="idefics3",
        template="granite-docling.jinja", prompt="document-granite-docling", image_first=True, max_tokens=8192,
        temperature=0.0, top_p=1.0, image=ImagePolicy("tiles", 2048, 2048, 64), special_output=True,
        postprocess="doctags",
        tokenizer=TokenizerSpec(
            "gpt2", "granite-docling", _GRANITE_TAIL, "<|end_of_text|>", "<|end_of_text|>", "<|end_of_text|>", False
        ),
        tiny_preset="granite-docling-tiny", full_preset="granite-docling-258m",
        published=(Published("ggml-org/granite-docling-258M-GGUF", "Q8_0", 175, 190),),
        best_for="born-digital and scanned documents whose structure matters (headings, tables, lists, code, "
                 "formulas): DocTags become Markdown; tiny and fast",
    ),
    "gemma-3": Family(
        name="gemma-3", title="Gemma 3 4B", text_archs=("gemma3",), projector="gemma3", template="gemma-3.jinja",
        prompt="document-gemma-3", image_first=True, max_tokens=1024, temperature=0.0, top_p=1.0,
        image=ImagePolicy("fixed", 2048, 2048), special_output=False, postprocess="none",
        tokenizer=TokenizerSpec(
            "llama", "default", ("<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"),
            "<bos>", "<eos>", "<pad>", True,
            (("<pad>", TokenType.CONTROL), ("<eos>", TokenType.CONTROL), ("<bos>", TokenType.CONTROL),
             ("<unk>", TokenType.UNKNOWN)),
            add_space_prefix=False,
        ),
        tiny_preset="gemma-3-tiny", full_preset="gemma-3-4b",
        published=(Published("ggml-org/gemma-3-4b-it-GGUF", "Q4_K_M", 2490, 851),),
        best_for="pages with photos, charts and mixed content, described or answered about; 896 px, 256 tokens "
                 "a page, so fine print suffers",
    ),
    "lightonocr": Family(
        name="lightonocr", title="LightOnOCR-1B", text_archs=("qwen3",), projector="lightonocr",
        template="lightonocr.jinja", prompt=None, image_first=True, max_tokens=4096, temperature=0.2, top_p=0.9,
        image=ImagePolicy("longest_edge", 2048, 2048, 28), special_output=False, postprocess="none",
        tokenizer=TokenizerSpec("gpt2", "qwen2", _QWEN_TAIL, "<|endoftext|>", "<|im_end|>", "<|endoftext|>", False),
        tiny_preset="lightonocr-tiny", full_preset="lightonocr-1b",
        published=(Published("ggml-org/LightOnOCR-1B-1025-GGUF", "Q8_0", 640, 820),),
        best_for="plain OCR of text-heavy pages to Markdown (an end-to-end OCR model, 1B): fast and faithful, "
                 "no descriptions of figures",
    ),
})

DEFAULT_FAMILY = "llava-1.5"


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ModelInvalid(f"unknown model family {name!r}; choose one of: {', '.join(FAMILIES)}") from None


def detect_family(text_arch: str, projector: str) -> Family | None:
    """The family a GGUF pair belongs to (``general.architecture`` and ``clip.projector_type``), if known."""
    for family in FAMILIES.values():
        if family.projector == projector and text_arch in family.text_archs:
            return family
    return None


def family_of_files(files: ModelFiles, *, override: str | None = None) -> Family:
    """The family of a GGUF pair on disk (its headers are read and checked: ``ModelError`` when unusable)."""
    from pagescribe.models.validate import validate_pair

    text, mmproj = validate_pair(files.text, files.mmproj)
    return family_for(text.architecture, mmproj.projector_type, override=override)


def family_for(text_arch: str, projector: str, *, override: str | None = None) -> Family:
    """The family to serve a pair as: ``override`` (``--family``) when given, else the detected one, else
    LLaVA-1.5's conventions (a llama.cpp vision pair of another family still loads, with its own template)."""
    if override:
        return get_family(override)
    return detect_family(text_arch, projector) or FAMILIES[DEFAULT_FAMILY]
