"""Minimal, fast GGUF (v2/v3, little-endian) header parser.

gguf.GGUFReader builds a numpy memmap view per array element, which takes
tens of seconds for Qwen's 150k-entry tokenizer arrays. This module parses the
same header with struct in well under a second and keeps each metadata
value's raw encoded bytes, so values can be copied and compared byte for byte.
Used by make-tiny-model.py; an independent cross-check of what gguf writes.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from typing import Any

# GGUF metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}
_NP_DTYPE = {
    UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4",
    FLOAT32: "<f4", BOOL: "?", UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8",
}


@dataclass
class KV:
    key: str
    vtype: int
    sub_type: int | None      # element type for arrays
    value: Any                # str/bytes for STRING (bytes), list for ARRAY, python scalar otherwise
    raw: bytes                # encoded value, starting with the u32 value type


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]    # GGUF order: ne[0] (innermost, contiguous) first
    ggml_type: int
    offset: int               # relative to data_offset


@dataclass
class Header:
    version: int
    kvs: dict[str, KV] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    alignment: int = 32
    data_offset: int = 0
    file_size: int = 0


class _Cur:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> bytes:
        n = self.unpack("<Q")
        s = bytes(self.buf[self.pos:self.pos + n])
        if len(s) != n:
            raise ValueError("truncated GGUF string")
        self.pos += n
        return s


def _value(c: _Cur, vtype: int, decode: bool):
    if vtype in _SCALAR:
        return c.unpack(_SCALAR[vtype]), None
    if vtype == STRING:
        return c.string(), None
    if vtype == ARRAY:
        sub = c.unpack("<I")
        n = c.unpack("<Q")
        if sub in _SCALAR:
            size = struct.calcsize(_SCALAR[sub])
            raw = c.buf[c.pos:c.pos + n * size]
            c.pos += n * size
            if not decode:
                return None, sub
            import numpy as np
            return np.frombuffer(raw, dtype=_NP_DTYPE[sub]).tolist(), sub
        if sub == STRING:
            out = [c.string() for _ in range(n)]
            return out, sub
        if sub == ARRAY:
            return [_value(c, ARRAY, decode)[0] for _ in range(n)], sub
        raise ValueError(f"bad GGUF array element type {sub}")
    raise ValueError(f"bad GGUF value type {vtype}")


def read_header(path, decode: bool = True) -> Header:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        c = _Cur(mm)
        if bytes(mm[:4]) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        c.pos = 4
        h = Header(version=c.unpack("<I"), file_size=len(mm))
        if h.version not in (2, 3):
            raise ValueError(f"{path}: unsupported GGUF version {h.version}")
        n_tensors = c.unpack("<Q")
        n_kv = c.unpack("<Q")
        for _ in range(n_kv):
            key = c.string().decode("utf-8")
            start = c.pos
            vtype = c.unpack("<I")
            value, sub = _value(c, vtype, decode)
            h.kvs[key] = KV(key, vtype, sub, value, bytes(mm[start:c.pos]))
        if "general.alignment" in h.kvs:
            h.alignment = int(h.kvs["general.alignment"].value)
        for _ in range(n_tensors):
            name = c.string().decode("utf-8")
            n_dims = c.unpack("<I")
            shape = tuple(c.unpack("<Q") for _ in range(n_dims))
            ggml_type = c.unpack("<I")
            offset = c.unpack("<Q")
            h.tensors.append(TensorInfo(name, shape, ggml_type, offset))
        a = h.alignment
        h.data_offset = (c.pos + a - 1) // a * a
    return h
