#!/usr/bin/env python3
"""Write a deterministic random GGUF shaped exactly like Qwen2.5-7B-Instruct Q4_K_M, in two shards.

    make-7b-shaped-model.py OUT_PREFIX --source REAL.gguf [--seed N]

writes OUT_PREFIX-00001-of-00002.gguf and OUT_PREFIX-00002-of-00002.gguf (about 4.68 GB in
all) and prints their sha256s. Run it with the project venv (scripts/python-env); it is driven by
scripts/make-7b-shaped-model, which caches the result. The bytes are identical across runs for the
same seed, source model and pinned gguf/numpy versions (scripts/requirements.txt).

What it copies from the published Qwen2.5-7B-Instruct-Q4_K_M (qwen2.5-7b-instruct-q4_k_m-0000N-
of-00002.gguf):

* Hyper-parameters: qwen2, 28 layers, hidden 3584, FFN 18944, 28 query heads, 4 KV heads
  (head_dim 128), context 32768, rope base 1e6, RMS eps 1e-6, file type 15 (Q4_K_M).
* Tokenizer: every `tokenizer.*` key of the source model (the same Qwen2 tokenizer and chat
  template), with the token list padded as the 7B's own conversion pads it: its embedding has
  152,064 rows, so the list gets `[PAD151936]` ... `[PAD152063]` of type UNUSED, like the
  `[PAD151665]` ... `[PAD151935]` the source already carries (llama.cpp requires token_embd's rows
  to equal the token count).
* Tensors: names, shapes and order as Qwen's files list them (the Hugging Face names sorted, so
  layers run 0, 1, 10, ..., 19, 2, 20, ...; check it on the source model), and the type mix
  llama.cpp's quantizer (`llama_tensor_get_type`, LLAMA_FTYPE_MOSTLY_Q4_K_M) gives them:
  Q4_K for every matrix, except Q6_K for `output.weight` and for `attn_v` / `ffn_down` of the
  layers where `use_more_bits(i, 28)` holds, `i` counting those tensors in file order (as the
  quantizer does; the 0.5B source shows the same pattern over its 24 layers). token_embd is Q4_K
  (the quantizer's default for Q4_K_M). Norms and biases are F32.
* Split: as `gguf-split --split-max-size 4G` (4e9 bytes of tensor data per shard; only the first
  shard has the model's metadata, every shard has `split.no`, `split.count`,
  `split.tensors.count`).

Weights are random but valid quantized blocks, drawn directly as bytes (never as floats, so the
4.7 GB stream in about a minute and never sit in memory): uniform 4-/6-bit quants; per block an
f16 scale `d` = 2^e x (1 + k/8); sub-block scales around a per-tensor value chosen so each matrix
has a standard deviation of gain/sqrt(fan_in): gain 1, except 0.5 for the matrices writing into
the residual stream (see WRITE_GAIN) and 2.5 for `output` (logits with a standard deviation of
about 2.5, so argmax has margins). Q4_K blocks are
zero-mean: `dmin` = 7.5 d exactly and every sub-block's min equals its scale. Q6_K sub-block
scales are signed, as llama.cpp's are. Norm weights are 1 +- 0.1, biases have std 0.02.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gguf_header  # noqa: E402  (scripts/gguf_header.py)
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

ARCH = "qwen2"
N_LAYER = 28
N_EMBD = 3584
N_FF = 18944
N_HEAD = 28
N_HEAD_KV = 4
HEAD_DIM = N_EMBD // N_HEAD
KV_DIM = N_HEAD_KV * HEAD_DIM
N_CTX = 32768
ROPE_BASE = 1000000.0
RMS_EPS = 1e-6
N_VOCAB = 152064  # token_embd / output rows of Qwen2.5-7B (a multiple of 256)
DEFAULT_SEED = 20261203
SPLIT_MAX_BYTES = 4 * 1000 * 1000 * 1000  # gguf-split --split-max-size 4G
QK_K = 256
CHUNK_BLOCKS = 1 << 18  # blocks generated per step: about 38-55 MB of output

LOGIT_STD = 2.5
EMBEDDING_STD = 0.5
# Gain of the matrices that write into the residual stream (attn_output, ffn_down): each layer
# nudges the stream rather than replacing it, as in trained models. A random network at full
# gain amplifies small differences layer after layer, so llama.cpp's 8-bit activations alone
# moved its logits by more than the goldens' tolerance (0.31 at gain 1 and logit std 4).
WRITE_GAIN = 0.5
NORM_STD = 0.1
BIAS_STD = 0.02

# Per layer, in the order Qwen's files have them (sorted Hugging Face names).
LAYER_TENSORS = [
    "attn_norm.weight", "ffn_down.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_norm.weight",
    "attn_k.bias", "attn_k.weight", "attn_output.weight", "attn_q.bias", "attn_q.weight",
    "attn_v.bias", "attn_v.weight",
]


def log(msg: str) -> None:
    print(f"make-7b-shaped-model: {msg}", file=sys.stderr, flush=True)


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's rule for the attn_v / ffn_down tensors that Q4_K_M keeps at Q6_K."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def layer_order() -> list[int]:
    """Layers in the order of their sorted names: 0, 1, 10, 11, ..., 19, 2, 20, ..."""
    return sorted(range(N_LAYER), key=str)


@dataclass(frozen=True)
class Spec:
    name: str
    shape: tuple[int, ...]  # numpy order: (rows, cols) or (n,)
    qtype: QT
    std: float  # standard deviation of the dequantized values (weights), or of the noise

    @property
    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        n = math.prod(self.shape)
        return n // block * size


def tensor_specs() -> list[Spec]:
    specs = [
        Spec("output.weight", (N_VOCAB, N_EMBD), QT.Q6_K, LOGIT_STD / math.sqrt(N_EMBD)),
        Spec("token_embd.weight", (N_VOCAB, N_EMBD), QT.Q4_K, EMBEDDING_STD),
    ]
    shapes = {
        "attn_norm.weight": (N_EMBD,), "ffn_norm.weight": (N_EMBD,),
        "ffn_down.weight": (N_EMBD, N_FF), "ffn_gate.weight": (N_FF, N_EMBD),
        "ffn_up.weight": (N_FF, N_EMBD), "attn_k.bias": (KV_DIM,), "attn_k.weight": (KV_DIM, N_EMBD),
        "attn_output.weight": (N_EMBD, N_EMBD), "attn_q.bias": (N_EMBD,),
        "attn_q.weight": (N_EMBD, N_EMBD), "attn_v.bias": (KV_DIM,), "attn_v.weight": (KV_DIM, N_EMBD),
    }
    # The quantizer counts attn_v and ffn_down tensors in file order, not by layer number.
    for i, layer in enumerate(layer_order()):
        more_bits = use_more_bits(i, N_LAYER)
        for short in LAYER_TENSORS:
            shape = shapes[short]
            if len(shape) == 1:
                qtype, std = QT.F32, (NORM_STD if "norm" in short else BIAS_STD)
            else:
                wide = short in ("attn_v.weight", "ffn_down.weight") and more_bits
                gain = WRITE_GAIN if short in ("attn_output.weight", "ffn_down.weight") else 1.0
                qtype, std = (QT.Q6_K if wide else QT.Q4_K), gain / math.sqrt(shape[1])
            specs.append(Spec(f"blk.{layer}.{short}", shape, qtype, std))
    specs.append(Spec("output_norm.weight", (N_EMBD,), QT.F32, NORM_STD))
    return specs


# --------------------------------------------------------------------------
# Random quantized blocks (ggml's block_q4_K and block_q6_K layouts).
# --------------------------------------------------------------------------

K_FACTORS = 1.0 + np.arange(8) / 8.0  # d = 2^e * (1 + k/8): 4 significant bits, so 7.5 d is exact
K_RMS = float(np.sqrt(np.mean(K_FACTORS**2)))
Q4_RMS = math.sqrt((16**2 - 1) / 12)  # q - 7.5 for q uniform in 0..15
Q6_RMS = math.sqrt((64**2 - 1) / 12 + 0.25)  # q - 32 for q uniform in 0..63
F16_MIN_EXP = -14  # keep every d a normal f16


def scale_plan(std: float, q_rms: float, max_scale: int) -> tuple[float, int, int]:
    """(2^e, lowest, highest sub-block scale) giving values of about `std`."""
    e = math.ceil(math.log2(std / (q_rms * K_RMS * max_scale / 1.3)))
    e = max(e, F16_MIN_EXP)
    s = std / (q_rms * K_RMS * 2.0**e)  # the sub-block scale's typical magnitude
    lo, hi = max(1, round(0.7 * s)), min(max_scale, max(1, round(1.3 * s)))
    return 2.0**e, lo, hi


def block_scale(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    return (base * K_FACTORS[rng.integers(0, 8, n)]).astype(np.float16)


def q4_k_blocks(rng: np.random.Generator, n: int, plan: tuple[float, int, int]) -> np.ndarray:
    base, lo, hi = plan
    d = block_scale(rng, n, base)
    dmin = (d.astype(np.float32) * np.float32(7.5)).astype(np.float16)
    sc = rng.integers(lo, hi + 1, (n, 8), dtype=np.uint8)
    m = sc  # min = 7.5 d sc: every sub-block is zero-mean
    out = np.empty((n, 144), dtype=np.uint8)
    out[:, 0:2] = d.reshape(n, 1).view(np.uint8)
    out[:, 2:4] = dmin.reshape(n, 1).view(np.uint8)
    out[:, 4:8] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    out[:, 8:12] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    out[:, 12:16] = (sc[:, 4:8] & 0x0F) | ((m[:, 4:8] & 0x0F) << 4)
    out[:, 16:144] = np.frombuffer(rng.bytes(n * 128), dtype=np.uint8).reshape(n, 128)
    return out


def q6_k_blocks(rng: np.random.Generator, n: int, plan: tuple[float, int, int]) -> np.ndarray:
    base, lo, hi = plan
    d = block_scale(rng, n, base)
    mag = rng.integers(lo, hi + 1, (n, 16), dtype=np.int16)
    sign = np.where(rng.integers(0, 2, (n, 16), dtype=np.uint8) == 1, -1, 1).astype(np.int16)
    out = np.empty((n, 210), dtype=np.uint8)
    out[:, 0:192] = np.frombuffer(rng.bytes(n * 192), dtype=np.uint8).reshape(n, 192)  # ql, qh
    out[:, 192:208] = (mag * sign).astype(np.int8).view(np.uint8)
    out[:, 208:210] = d.reshape(n, 1).view(np.uint8)
    return out


BLOCK_WRITERS = {QT.Q4_K: (q4_k_blocks, Q4_RMS, 63), QT.Q6_K: (q6_k_blocks, Q6_RMS, 127)}


class StreamedTensor:
    """A tensor's bytes produced chunk by chunk when the writer asks for them (`tofile`)."""

    def __init__(self, spec: Spec, seed: int, index: int):
        self.spec = spec
        self.nbytes = spec.nbytes
        self.seed = (seed, index)

    def chunks(self):
        spec = self.spec
        rng = np.random.default_rng(self.seed)
        if spec.qtype == QT.F32:
            center = 1.0 if "norm" in spec.name else 0.0
            noise = rng.standard_normal(spec.shape, dtype=np.float32) * np.float32(spec.std)
            yield (np.float32(center) + noise).astype(np.float32)
            return
        make, q_rms, max_scale = BLOCK_WRITERS[spec.qtype]
        plan = scale_plan(spec.std, q_rms, max_scale)
        blocks = math.prod(spec.shape) // QK_K
        for start in range(0, blocks, CHUNK_BLOCKS):
            yield make(rng, min(CHUNK_BLOCKS, blocks - start), plan)

    def tofile(self, fp) -> None:
        written = 0
        for chunk in self.chunks():
            chunk.tofile(fp)
            written += chunk.nbytes
        assert written == self.nbytes, (self.spec.name, written, self.nbytes)


# --------------------------------------------------------------------------


def copy_tokenizer_fields(src: gguf_header.Header, writer: gguf.GGUFWriter) -> int:
    """Copies every tokenizer.* key, padding the token list to N_VOCAB; returns the source's count."""
    tokens = src.kvs["tokenizer.ggml.tokens"].value
    types = src.kvs["tokenizer.ggml.token_type"].value
    n_src = len(tokens)
    if len(types) != n_src or n_src > N_VOCAB:
        raise ValueError(f"source tokenizer has {n_src} tokens, {len(types)} types")
    for key, kv in src.kvs.items():
        if not key.startswith("tokenizer."):
            continue
        value = kv.value
        if key == "tokenizer.ggml.tokens":
            value = tokens + [f"[PAD{i}]".encode() for i in range(n_src, N_VOCAB)]
        elif key == "tokenizer.ggml.token_type":
            value = types + [int(gguf.TokenType.UNUSED)] * (N_VOCAB - n_src)
        if kv.vtype == VT.ARRAY:
            writer.add_key_value(key, value, VT.ARRAY, sub_type=VT(kv.sub_type))
        else:
            writer.add_key_value(key, value, VT(kv.vtype))
    return n_src


def shard_paths(prefix: Path, count: int) -> list[Path]:
    return [prefix.with_name(f"{prefix.name}-{i + 1:05d}-of-{count:05d}.gguf") for i in range(count)]


def build(prefix: Path, source: Path, seed: int) -> list[Path]:
    src = gguf_header.read_header(source)
    if src.kvs["general.architecture"].value != b"qwen2":
        raise ValueError(f"{source}: not a qwen2 model")
    specs = tensor_specs()
    tmp_prefix = prefix.with_name(f"{prefix.name}.tmp{os.getpid()}")
    w = gguf.GGUFWriter(tmp_prefix.with_name(tmp_prefix.name + ".gguf"), ARCH,
                        split_max_size=SPLIT_MAX_BYTES)
    try:
        w.add_type("model")
        w.add_name("Qwen2.5 7B-shaped random (qwen-webgpu test model)")
        w.add_size_label("7B")
        w.add_block_count(N_LAYER)
        w.add_context_length(N_CTX)
        w.add_embedding_length(N_EMBD)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_rope_freq_base(ROPE_BASE)
        w.add_layer_norm_rms_eps(RMS_EPS)
        w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
        n_src = copy_tokenizer_fields(src, w)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        log(f"tokenizer: {n_src} tokens from {source.name}, padded to {N_VOCAB}")

        for spec in specs:
            if spec.qtype == QT.F32:
                w.add_tensor_info(spec.name, spec.shape, np.dtype(np.float32), spec.nbytes)
            else:
                w.add_tensor_info(spec.name, spec.shape, np.dtype(np.float32), spec.nbytes,
                                  raw_dtype=spec.qtype)
        if len(w.tensors) != 2:
            raise AssertionError(f"expected two shards, the split rule gives {len(w.tensors)}")
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        total = sum(s.nbytes for s in specs)
        done = 0
        for index, spec in enumerate(specs):
            w.write_tensor_data(StreamedTensor(spec, seed, index))
            done += spec.nbytes
            if index % 24 == 0 or index == len(specs) - 1:
                log(f"  {done / 1e9:5.2f} / {total / 1e9:.2f} GB ({spec.name})")
        w.close()
        tmp_paths = shard_paths(tmp_prefix, 2)
        for p in tmp_paths:
            with open(p, "rb+") as f:
                os.fsync(f.fileno())
        verify(tmp_paths, specs, src, n_src)
        final = shard_paths(prefix, 2)
        for t, f in reversed(list(zip(tmp_paths, final))):
            os.replace(t, f)
        return final
    finally:
        w.close()
        for p in shard_paths(tmp_prefix, 2):
            if p.exists():
                p.unlink()


def verify(paths: list[Path], specs: list[Spec], src: gguf_header.Header, n_src: int) -> None:
    """Re-parses both shards with scripts/gguf_header.py and dequantizes a sample of every tensor."""
    headers = [gguf_header.read_header(p) for p in paths]
    for i, h in enumerate(headers):
        split = {k: h.kvs[k].value for k in ("split.no", "split.count", "split.tensors.count")}
        if split != {"split.no": i, "split.count": 2, "split.tensors.count": len(specs)}:
            raise AssertionError(f"shard {i + 1}: split keys {split}")
    first = headers[0]
    for key, kv in src.kvs.items():
        if key.startswith("tokenizer.") and key not in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
            if first.kvs[key].raw != kv.raw:
                raise AssertionError(f"metadata {key} differs from the source model")
    tokens = first.kvs["tokenizer.ggml.tokens"].value
    if len(tokens) != N_VOCAB or tokens[:n_src] != src.kvs["tokenizer.ggml.tokens"].value:
        raise AssertionError("token list is not the source's, padded")
    want_kv = {
        f"{ARCH}.block_count": N_LAYER, f"{ARCH}.context_length": N_CTX,
        f"{ARCH}.embedding_length": N_EMBD, f"{ARCH}.feed_forward_length": N_FF,
        f"{ARCH}.attention.head_count": N_HEAD, f"{ARCH}.attention.head_count_kv": N_HEAD_KV,
    }
    for key, val in want_kv.items():
        if first.kvs[key].value != val:
            raise AssertionError(f"{key} = {first.kvs[key].value!r}, expected {val!r}")
    got = [(p, h, t) for p, h in zip(paths, headers) for t in h.tensors]
    if [t.name for _, _, t in got] != [s.name for s in specs]:
        raise AssertionError("tensor order differs from the plan")
    for (path, h, t), spec in zip(got, specs):
        if QT(t.ggml_type) != spec.qtype or t.shape != tuple(reversed(spec.shape)):
            raise AssertionError(f"{t.name}: {QT(t.ggml_type).name} {t.shape}")
        start = h.data_offset + t.offset
        if start % h.alignment or start + spec.nbytes > h.file_size:
            raise AssertionError(f"{t.name}: data at {start} (+{spec.nbytes}) outside {path.name}")
        check_values(path, start, spec)
    sizes = [h.file_size for h in headers]
    log(f"verified {len(specs)} tensors in {len(paths)} shards: {sizes} bytes")


def check_values(path: Path, start: int, spec: Spec) -> None:
    """Dequantizes up to 16 rows from the start and the end of a tensor: finite, std as planned."""
    rows = spec.shape[0] if len(spec.shape) == 2 else 1
    row_bytes = spec.nbytes // rows
    take = min(rows, 16)
    values = []
    with open(path, "rb") as f:
        for row in (0, rows - take) if rows > take else (0,):
            f.seek(start + row * row_bytes)
            raw = np.frombuffer(f.read(take * row_bytes), dtype=np.uint8)
            if spec.qtype == QT.F32:
                values.append(raw.view(np.float32))
            else:
                values.append(gguf.quants.dequantize(raw.reshape(take, row_bytes), spec.qtype).ravel())
    x = np.concatenate(values).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise AssertionError(f"{spec.name}: non-finite values")
    center = 1.0 if "norm" in spec.name else 0.0
    std = float(np.sqrt(np.mean((x - center) ** 2)))
    if not 0.6 * spec.std < std < 1.5 * spec.std:
        raise AssertionError(f"{spec.name}: std {std:.3g}, planned {spec.std:.3g}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", type=Path, help="output path without -0000N-of-00002.gguf")
    ap.add_argument("--source", type=Path, required=True,
                    help="real Qwen2 GGUF to copy tokenizer.* metadata from")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--plan", action="store_true", help="print the tensor table and exit")
    args = ap.parse_args()
    if args.plan:
        for s in tensor_specs():
            print(f"{s.name:28s} {s.qtype.name:5s} {list(reversed(s.shape))} {s.nbytes}")
        return 0
    args.prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = build(args.prefix, args.source, args.seed)
    for p in paths:
        print(f"{sha256(p)}  {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
