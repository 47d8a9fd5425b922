#!/usr/bin/env python3
"""Write tests/fixtures/dequant.json: the oracle for the Rust CPU dequantizer.

    make-dequant-fixtures.py [REAL_MODEL.gguf] [--out PATH]

Run it with the project venv (scripts/python-env prints its python). Without
a model path it runs scripts/fetch-test-model to obtain the real test model.
The output is deterministic (fixed seeds, no timestamps).

Every case holds raw GGML blocks (`bytes_hex`) and the f32 bit patterns of
what `gguf.quants.dequantize` makes of them (`values_f32_bits`), so a
comparison can be bit-exact. Cases come from two sources:

* "tensor NAME": blocks cut from the real model (Qwen2.5-Coder-0.5B-Instruct
  Q4_K_M): for each tensor type present, two different tensors, and from each
  the first 4 blocks of row 0 and 4 blocks from the middle of the tensor (64
  values for F32). `file_offset` is the absolute byte offset of the first
  block in the model file.
* "synthetic seed N": random block bytes whose f16 scale fields (d, dmin, m)
  are overwritten with finite values; for every type a "typical" case (scales
  1e-3..1e-2) and a "special" case (negative, +-0, subnormal and large
  scales). F16/BF16 cases contain +-0, subnormals, large finite values and
  random finite patterns (never NaN or Inf).

`formulas` documents gguf's f32 evaluation order per type; a Rust port must
use the same order (and no fused multiply-add) to match bit for bit.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "dequant.json"

REAL_BLOCKS = 4          # blocks per real-model case
REAL_F32_VALUES = 64     # values per real-model F32 case
SYNTH_BLOCKS = 4         # blocks per synthetic quantized case
SYNTH_FLOAT_VALUES = 64  # values per synthetic F16/BF16 case

# Byte offsets of the f16 scale fields inside one block of each type
# (ggml's block_* structs).
F16_FIELDS = {
    QT.Q4_0: [0],          # d
    QT.Q4_1: [0, 2],       # d, m
    QT.Q5_0: [0],          # d
    QT.Q5_1: [0, 2],       # d, m
    QT.Q8_0: [0],          # d
    QT.Q2_K: [80, 82],     # d, dmin (after scales[16], qs[64])
    QT.Q3_K: [108],        # d (after hmask[32], qs[64], scales[12])
    QT.Q4_K: [0, 2],       # d, dmin
    QT.Q5_K: [0, 2],       # d, dmin
    QT.Q6_K: [208],        # d (after ql[128], qh[64], scales[16])
}

# Order of f32 operations in gguf.quants (and ggml's dequantize_row_*).
FORMULAS = {
    "F32": "x",
    "F16": "f32(h)",
    "BF16": "f32 bits = u32(b) << 16",
    "Q4_0": "f32(d) * f32(q - 8)",
    "Q4_1": "f32(d) * f32(q) + f32(m)",
    "Q5_0": "f32(d) * f32(q - 16)",
    "Q5_1": "f32(d) * f32(q) + f32(m)",
    "Q8_0": "f32(d) * f32(q)",
    "Q2_K": "(f32(d) * f32(sc & 15)) * f32(q) - (f32(dmin) * f32(sc >> 4))",
    "Q3_K": "(f32(d) * f32(sc - 32)) * f32(q)   (q = low2 - (hmask bit ? 0 : 4))",
    "Q4_K": "(f32(d) * f32(sc)) * f32(q) - (f32(dmin) * f32(m))",
    "Q5_K": "(f32(d) * f32(sc)) * f32(q) - (f32(dmin) * f32(m))",
    "Q6_K": "(f32(d) * f32(sc_i8)) * f32(q - 32)",
}

# Typical scale magnitudes and special values for the f16 fields.
SPECIAL_F16_SCALES = np.array([
    0x0000,  # +0
    0x8000,  # -0
    0x0001,  # smallest positive subnormal (2^-24)
    0x83FF,  # largest-magnitude negative subnormal
    0x0400,  # smallest positive normal (2^-14)
    0xBC00,  # -1.0
    0x5640,  # 100.0
    0xFBFF,  # -65504 (most negative finite)
    0x1E66,  # ~0.0062
    0x9A9A,  # ~-0.0032
    0x7BFF,  # 65504 (largest finite)
    0x03FF,  # largest positive subnormal
    0x8001,  # smallest-magnitude negative subnormal
    0x2E66,  # ~0.1
    0xA11F,  # ~-0.0098
    0x3C00,  # 1.0
], dtype=np.uint16)

SPECIAL_F16_VALUES = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400,
                      0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x3555, 0x7800, 0x0200, 0x1400]
SPECIAL_BF16_VALUES = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080, 0x8080,
                       0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3EAB, 0x4B00, 0x0040, 0x3C23]


def log(msg: str) -> None:
    print(f"make-dequant-fixtures: {msg}", file=sys.stderr)


def f32_bits(values: np.ndarray) -> list[int]:
    v = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return v.view(np.uint32).tolist()


def dequant(raw: np.ndarray, qtype: QT) -> np.ndarray:
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    out = gguf.quants.dequantize(raw, qtype)
    return np.asarray(out, dtype=np.float32).reshape(-1)


def make_case(qtype: QT, source: str, tensor, file_offset, raw: np.ndarray, block_index=None) -> dict:
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    assert raw.size % type_size == 0
    n_blocks = raw.size // type_size
    values = dequant(raw, qtype)
    assert values.size == n_blocks * block_size, (qtype, values.size)
    if not np.all(np.isfinite(values)):
        raise AssertionError(f"{qtype.name} {source}: non-finite dequantized values")
    case = {
        "type": qtype.name,
        "source": source,
        "tensor": tensor,
        "file_offset": file_offset,
    }
    if block_index is not None:
        case["block_index"] = block_index
    case.update({
        "n_blocks": n_blocks,
        "bytes_hex": raw.tobytes().hex(),
        "values_f32_bits": f32_bits(values),
    })
    return case


# ---------------------------------------------------------------- real model

def real_cases(model: Path) -> list[dict]:
    log(f"reading {model} with gguf.GGUFReader (slow for the tokenizer arrays)")
    r = gguf.GGUFReader(model)
    by_type: dict[QT, list] = {}
    for t in r.tensors:
        by_type.setdefault(QT(t.tensor_type), []).append(t)
    log("tensor types: " + ", ".join(f"{k.name} {len(v)}" for k, v in by_type.items()))
    mm = np.memmap(model, dtype=np.uint8, mode="r")
    cases = []
    for qtype in sorted(by_type, key=lambda q: q.value):
        tensors = by_type[qtype]
        # Two different tensors: the first and the last of this type in file order.
        picks = [tensors[0], tensors[-1]] if len(tensors) > 1 else tensors[:1]
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        n_take = REAL_F32_VALUES if qtype == QT.F32 else REAL_BLOCKS
        for t in picks:
            total_blocks = int(t.n_elements) // block_size
            assert int(t.n_bytes) == total_blocks * type_size
            for start in (0, (total_blocks // 2) // n_take * n_take):
                start = min(start, total_blocks - n_take)
                off = int(t.data_offset) + start * type_size
                raw = np.array(mm[off:off + n_take * type_size])
                # Cross-check the reader's view of the same bytes.
                view = np.asarray(t.data).reshape(-1).view(np.uint8)
                assert bytes(view[start * type_size:(start + n_take) * type_size]) == raw.tobytes()
                cases.append(make_case(qtype, f"tensor {t.name}", t.name, off, raw, block_index=start))
        log(f"  {qtype.name}: {', '.join(t.name for t in picks)}")
    return cases


# ----------------------------------------------------------------- synthetic

def f16_bits_of(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float16).view(np.uint16)


def synthetic_quant(qtype: QT, seed: int, special: bool) -> dict:
    rng = np.random.default_rng(seed)
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(SYNTH_BLOCKS, type_size), dtype=np.uint8)
    fields = F16_FIELDS[qtype]
    n_scales = SYNTH_BLOCKS * len(fields)
    if special:
        # Spread the special values over all blocks/fields, deterministic per type.
        start = int(rng.integers(0, len(SPECIAL_F16_SCALES)))
        bits = np.roll(SPECIAL_F16_SCALES, -start)[:n_scales]
        if n_scales > len(bits):
            bits = np.resize(SPECIAL_F16_SCALES, n_scales)
    else:
        mags = np.exp(rng.uniform(np.log(1e-3), np.log(1e-2), size=n_scales))
        bits = f16_bits_of(mags)
    bits = bits.reshape(SYNTH_BLOCKS, len(fields))
    for j, off in enumerate(fields):
        raw[:, off:off + 2] = bits[:, j:j + 1].astype("<u2").view(np.uint8).reshape(SYNTH_BLOCKS, 2)
    label = "special scales (+-0, subnormal, negative, large)" if special else "scales 1e-3..1e-2"
    return make_case(qtype, f"synthetic seed {seed} {label}", None, None, raw)


def synthetic_f16(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = SYNTH_FLOAT_VALUES
    vals = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    vals = np.where((vals & 0x7C00) == 0x7C00, vals & 0xBFFF, vals)   # no Inf/NaN: clear top exponent bit
    k = len(SPECIAL_F16_VALUES)
    vals[:k] = SPECIAL_F16_VALUES
    vals[k:k + 16] = f16_bits_of(rng.standard_normal(16) * 0.05)
    assert not np.any((vals & 0x7C00) == 0x7C00)
    raw = vals.astype("<u2").view(np.uint8)
    return make_case(QT.F16, f"synthetic seed {seed} (+-0, subnormals, max finite, random finite)", None, None, raw)


def synthetic_bf16(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = SYNTH_FLOAT_VALUES
    vals = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    vals = np.where((vals & 0x7F80) == 0x7F80, vals & 0xBFFF, vals)   # no Inf/NaN
    k = len(SPECIAL_BF16_VALUES)
    vals[:k] = SPECIAL_BF16_VALUES
    normals = (rng.standard_normal(16) * 0.05).astype(np.float32).view(np.uint32) >> 16
    vals[k:k + 16] = normals.astype(np.uint16)
    assert not np.any((vals & 0x7F80) == 0x7F80)
    raw = vals.astype("<u2").view(np.uint8)
    return make_case(QT.BF16, f"synthetic seed {seed} (+-0, subnormals, max finite, random finite)", None, None, raw)


SYNTH_QUANT_TYPES = [QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0,
                     QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K]


def synthetic_cases() -> list[dict]:
    cases = [synthetic_f16(1), synthetic_bf16(2)]
    for i, qtype in enumerate(SYNTH_QUANT_TYPES):
        cases.append(synthetic_quant(qtype, seed=7 + 2 * i, special=False))
        cases.append(synthetic_quant(qtype, seed=8 + 2 * i, special=True))
    return cases


# ---------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def render(doc: dict) -> str:
    """Stable, diff-friendly JSON: one case per line."""
    lines = ["{"]
    head = [k for k in doc if k != "cases"]
    for k in head:
        if isinstance(doc[k], dict):
            inner = ",\n".join(f"  {json.dumps(kk)}: {json.dumps(vv)}" for kk, vv in doc[k].items())
            lines.append(f" {json.dumps(k)}: {{\n{inner}\n }},")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(doc[k])},")
    lines.append(' "cases": [')
    cases = [" " + json.dumps(c, separators=(",", ":")) for c in doc["cases"]]
    lines.append(",\n".join(cases))
    lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path, help="real model GGUF (default: scripts/fetch-test-model)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    model = args.model
    if model is None:
        res = subprocess.run([str(HERE / "fetch-test-model")], check=True, stdout=subprocess.PIPE, text=True)
        model = Path(res.stdout.strip().splitlines()[-1])
    log(f"model {model}")

    quant_sizes = {}
    for qt, (bs, ts) in sorted(gguf.GGML_QUANT_SIZES.items(), key=lambda kv: kv[0].value):
        quant_sizes[qt.name] = [bs, ts]

    doc = {
        "generator": f"gguf {importlib.metadata.version('gguf')} gguf.quants.dequantize",
        "numpy": np.__version__,
        "model_sha256": sha256_file(model),
        "value_encoding": "values_f32_bits[i] is the IEEE-754 bit pattern (u32) of dequantized value i; "
                          "blocks are little-endian ggml block structs; file_offset is absolute in the model file",
        "formulas": FORMULAS,
        "quant_sizes": quant_sizes,
        "cases": real_cases(model) + synthetic_cases(),
    }
    text = render(doc)
    json.loads(text)  # well-formed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    counts: dict[str, int] = {}
    for c in doc["cases"]:
        counts[c["type"]] = counts.get(c["type"], 0) + 1
    log(f"wrote {args.out}: {len(doc['cases'])} cases, {len(text)} bytes; per type {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
