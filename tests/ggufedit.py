"""Rewrite GGUF files with edits, to make broken models for tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gguf import GGUFReader, GGUFValueType, GGUFWriter

KeyEdit = tuple[Any, GGUFValueType] | None  # new (value, type), or None to drop the key
RNG = np.random.default_rng(0)


def rewrite_gguf(
    src: GGUFReader,
    dst: Path,
    *,
    keys: Mapping[str, KeyEdit] | None = None,
    tensors: Mapping[str, npt.NDArray[Any] | None] | None = None,
) -> Path:
    """Copy a GGUF file through gguf-py, replacing or dropping (None) keys and tensors."""
    keys, tensors = keys or {}, tensors or {}
    arch_edit = keys.get("general.architecture")
    writer = GGUFWriter(dst, arch_edit[0] if arch_edit else src.fields["general.architecture"].contents())
    for name, field in src.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture" or name in keys:
            continue
        sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub_type)
    for name, edit in keys.items():
        if edit is not None and name != "general.architecture":
            writer.add_key_value(name, edit[0], edit[1])
    for tensor in src.tensors:
        if tensor.name in tensors:
            replacement = tensors[tensor.name]
            if replacement is not None:
                writer.add_tensor(tensor.name, replacement)
        else:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def f16(*shape: int) -> npt.NDArray[np.float16]:
    return RNG.standard_normal(shape).astype(np.float16)
