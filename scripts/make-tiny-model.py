#!/usr/bin/env python3
"""Write a tiny, deterministic, random-weight qwen2 GGUF model for fast tests.

    make-tiny-model.py OUT.gguf [--source REAL.gguf] [--seed N]

Run it with the project venv (scripts/python-env prints its python). The
output is byte-identical across runs for the same gguf/numpy versions (pinned
in scripts/requirements.txt) and the same source model.

* Hyper-parameters: qwen2, 2 layers, hidden 64, FFN 256, 4 query heads,
  2 KV heads (head_dim 16), context 4096, rope base 1e6, RMS eps 1e-6.
* Metadata: every `tokenizer.*` key of the source (real) model is copied
  verbatim (same value types, same order), so the tiny model tokenizes exactly
  like Qwen2.5 and its vocabulary is the full 151936 tokens.
* Tensors: the real qwen2 GGUF names and shapes, with a deliberate mix of
  types so every GPU kernel gets exercised:

    tensor                 layer 0   layer 1
    token_embd.weight      Q8_0 (151936 x 64)
    attn_q/k/v.weight      Q5_0      F16
    attn_q/k/v.bias        F32       F32
    attn_output.weight     Q8_0      Q4_0
    ffn_gate.weight        Q5_0      Q4_1
    ffn_up.weight          Q5_0      Q5_1
    ffn_down.weight        Q4_K      Q6_K     (input dim 256 = one super-block)
    attn_norm/ffn_norm     F32       F32
    output_norm.weight     F32
    output.weight          Q8_0 (151936 x 64, untied like the real model)

  Weights are seeded normal floats: std 1/sqrt(fan_in) for the layer matrices
  (each layer visibly moves the residual stream), 0.3 for token_embd and
  4/sqrt(64) for output.weight (logits std ~4, so the next-token distribution
  is peaked and greedy argmax has margins), norms 1.0 +- 0.1, biases std
  0.02. They are quantized with gguf.quants where it can; Q4_K and Q6_K
  (which gguf 0.19 cannot quantize) use the small reference quantizers below,
  whose packing is checked by a round trip through gguf.quants.dequantize.
  The Q6_K sub-block scales are signed (as in llama.cpp), so negative int8
  scales occur.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gguf_header  # noqa: E402  (scripts/gguf_header.py)
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ARCH = "qwen2"
N_LAYER = 2
N_EMBD = 64
N_FF = 256
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = N_EMBD // N_HEAD
N_CTX = 4096
ROPE_BASE = 1000000.0
RMS_EPS = 1e-6
DEFAULT_SEED = 20240611
QK_K = 256

REAL_MODEL_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

# Per-layer tensor types (see module docstring).
LAYER_TYPES = [
    {"attn_qkv": QT.Q5_0, "attn_output": QT.Q8_0, "ffn_gate": QT.Q5_0, "ffn_up": QT.Q5_0, "ffn_down": QT.Q4_K},
    {"attn_qkv": QT.F16, "attn_output": QT.Q4_0, "ffn_gate": QT.Q4_1, "ffn_up": QT.Q5_1, "ffn_down": QT.Q6_K},
]


def log(msg: str) -> None:
    print(f"make-tiny-model: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------
# Reference quantizers for the K-quants gguf.quants cannot produce.
# Simple min/max (Q4_K) and max-abs (Q6_K) schemes, not llama.cpp's
# error-minimising search; the byte layout is exactly ggml's block_q4_K /
# block_q6_K (verified by round trip in quantize()).
# --------------------------------------------------------------------------

def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """x: (rows, cols), cols % 256 == 0 -> uint8 (rows, cols/256*144)."""
    rows = x.shape[0]
    b = x.astype(np.float32).reshape(-1, 8, 32)          # (n, sub-block, elem)
    n = b.shape[0]
    lo = np.minimum(b.min(-1), 0.0)                       # (n, 8), <= 0
    hi = np.maximum(b.max(-1), 0.0)
    scale = (hi - lo) / 15.0                              # >= 0
    mins = -lo                                            # >= 0
    d16 = _f16(scale.max(-1) / 63.0)                      # (n,)
    dmin16 = _f16(mins.max(-1) / 63.0)
    d = d16.astype(np.float32)[:, None]
    dmin = dmin16.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d > 0, np.clip(np.rint(scale / d), 0, 63), 0).astype(np.uint8)
        mq = np.where(dmin > 0, np.clip(np.rint(mins / dmin), 0, 63), 0).astype(np.uint8)
        eff_d = (d * sc.astype(np.float32))[:, :, None]
        eff_m = (dmin * mq.astype(np.float32))[:, :, None]
        q = np.where(eff_d > 0, np.clip(np.rint((b + eff_m) / eff_d), 0, 15), 0).astype(np.uint8)
    scales = np.empty((n, 12), dtype=np.uint8)
    scales[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = mq[:, 0:4] | ((mq[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((mq[:, 4:8] & 0x0F) << 4)
    q = q.reshape(n, 4, 2, 32)                           # pairs of sub-blocks share bytes
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(n, 128)
    out = np.concatenate(
        [d16.reshape(n, 1).view(np.uint8), dmin16.reshape(n, 1).view(np.uint8), scales, qs], axis=1
    )
    assert out.shape[1] == 144
    return out.reshape(rows, -1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """x: (rows, cols), cols % 256 == 0 -> uint8 (rows, cols/256*210)."""
    rows = x.shape[0]
    b = x.astype(np.float32).reshape(-1, 16, 16)         # (n, sub-block, elem)
    n = b.shape[0]
    idx = np.abs(b).argmax(-1)
    vmax = np.take_along_axis(b, idx[..., None], -1)[..., 0]   # signed value of max |x|
    scale = -vmax / 32.0                                  # like ggml: signed sub-block scales
    d16 = _f16(np.abs(scale).max(-1) / 127.0)
    d = d16.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d > 0, np.clip(np.rint(scale / d), -128, 127), 0).astype(np.int8)
        eff = (d * sc.astype(np.float32))[:, :, None]
        q = np.where(eff != 0, np.clip(np.rint(b / eff), -32, 31), 0).astype(np.int16) + 32
    q = q.astype(np.uint8).reshape(n, 256)
    low = (q & 0x0F).reshape(n, 2, 2, 64)                 # [half, nibble, elem]
    ql = (low[:, :, 0, :] | (low[:, :, 1, :] << 4)).reshape(n, 128)
    high = (q >> 4).reshape(n, 2, 4, 32)                  # [half, 2-bit field, elem]
    qh = (high[:, :, 0, :] | (high[:, :, 1, :] << 2) | (high[:, :, 2, :] << 4) | (high[:, :, 3, :] << 6)).reshape(n, 64)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d16.reshape(n, 1).view(np.uint8)], axis=1)
    assert out.shape[1] == 210
    return out.reshape(rows, -1)


_FALLBACK_QUANTIZERS = {QT.Q4_K: quantize_q4_k, QT.Q6_K: quantize_q6_k}


def quantize(x: np.ndarray, qtype: QT) -> np.ndarray:
    """float32 (rows, cols) -> array to hand to GGUFWriter.add_tensor."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if qtype == QT.F32:
        return x
    if qtype == QT.F16:
        return x.astype(np.float16)
    try:
        data = gguf.quants.quantize(x, qtype)
    except NotImplementedError:
        data = _FALLBACK_QUANTIZERS[qtype](x)
    # Round trip: the packing must decode to (approximately) the input.
    back = gguf.quants.dequantize(data, qtype).reshape(x.shape)
    if not np.all(np.isfinite(back)):
        raise AssertionError(f"{qtype.name}: non-finite values after round trip")
    err = float(np.abs(back - x).max())
    tol = 0.2 * float(np.abs(x).max()) + 1e-6
    if err > tol:
        raise AssertionError(f"{qtype.name}: round-trip error {err} > {tol}")
    return data


# --------------------------------------------------------------------------


def find_default_source() -> Path:
    cache = Path(os.environ.get("QWEN_WEBGPU_CACHE", Path.home() / ".cache" / "qwen-webgpu"))
    return cache / "models" / REAL_MODEL_NAME


def copy_tokenizer_fields(src: gguf_header.Header, writer: gguf.GGUFWriter) -> list[str]:
    """Copy every tokenizer.* key verbatim (value type, element type, bytes, order)."""
    copied = []
    for key, kv in src.kvs.items():
        if not key.startswith("tokenizer."):
            continue
        if kv.vtype == VT.ARRAY:
            if kv.sub_type == VT.ARRAY:
                raise ValueError(f"{key}: nested arrays are not supported")
            writer.add_key_value(key, kv.value, VT.ARRAY, sub_type=VT(kv.sub_type))
        else:
            # STRING values stay bytes: the writer packs them as-is.
            writer.add_key_value(key, kv.value, VT(kv.vtype))
        copied.append(key)
    if "tokenizer.ggml.tokens" not in copied:
        raise ValueError("source model has no tokenizer.ggml.tokens")
    return copied


def build(out: Path, source: Path, seed: int, check_reader: bool) -> None:
    log(f"source {source}")
    src = gguf_header.read_header(source)
    if src.kvs["general.architecture"].value != b"qwen2":
        raise ValueError(f"{source}: not a qwen2 model")
    n_vocab = len(src.kvs["tokenizer.ggml.tokens"].value)
    log(f"vocab {n_vocab}")

    rng = np.random.default_rng(seed)

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def weight(rows, cols, gain=1.0):
        return normal((rows, cols), gain / np.sqrt(cols))

    def norm(n):
        return (1.0 + normal((n,), 0.1)).astype(np.float32)

    tmp = out.with_name(out.name + f".tmp.{os.getpid()}")
    w = gguf.GGUFWriter(tmp, ARCH)
    try:
        # Metadata, in the same order as the real model.
        w.add_type("model")
        w.add_name("qwen2-tiny-random")
        w.add_block_count(N_LAYER)
        w.add_context_length(N_CTX)
        w.add_embedding_length(N_EMBD)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_rope_freq_base(ROPE_BASE)
        w.add_layer_norm_rms_eps(RMS_EPS)
        # Nearly all bytes are the Q8_0 embedding/output matrices.
        w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q8_0))
        copied = copy_tokenizer_fields(src, w)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)

        def add(name, data, qtype):
            t = quantize(data, qtype)
            w.add_tensor(name, t, raw_dtype=None if qtype in (QT.F32, QT.F16) else qtype)

        add("token_embd.weight", normal((n_vocab, N_EMBD), 0.3), QT.Q8_0)
        kv_dim = N_HEAD_KV * HEAD_DIM
        for il, types in enumerate(LAYER_TYPES):
            p = f"blk.{il}."
            add(p + "attn_norm.weight", norm(N_EMBD), QT.F32)
            add(p + "attn_q.weight", weight(N_EMBD, N_EMBD), types["attn_qkv"])
            add(p + "attn_q.bias", normal((N_EMBD,), 0.02), QT.F32)
            add(p + "attn_k.weight", weight(kv_dim, N_EMBD), types["attn_qkv"])
            add(p + "attn_k.bias", normal((kv_dim,), 0.02), QT.F32)
            add(p + "attn_v.weight", weight(kv_dim, N_EMBD), types["attn_qkv"])
            add(p + "attn_v.bias", normal((kv_dim,), 0.02), QT.F32)
            add(p + "attn_output.weight", weight(N_EMBD, N_EMBD), types["attn_output"])
            add(p + "ffn_norm.weight", norm(N_EMBD), QT.F32)
            add(p + "ffn_gate.weight", weight(N_FF, N_EMBD), types["ffn_gate"])
            add(p + "ffn_up.weight", weight(N_FF, N_EMBD), types["ffn_up"])
            add(p + "ffn_down.weight", weight(N_EMBD, N_FF), types["ffn_down"])
        add("output_norm.weight", norm(N_EMBD), QT.F32)
        add("output.weight", weight(n_vocab, N_EMBD, gain=4.0), QT.Q8_0)

        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        verify(tmp, src, copied, n_vocab, check_reader)
        os.replace(tmp, out)
    finally:
        w.close()
        if tmp.exists():
            tmp.unlink()
    log(f"wrote {out} ({out.stat().st_size} bytes)")


def expected_tensors(n_vocab: int) -> dict[str, tuple[tuple[int, ...], QT]]:
    """name -> (GGUF shape, ne[0] first; type)"""
    kv_dim = N_HEAD_KV * HEAD_DIM
    t = {"token_embd.weight": ((N_EMBD, n_vocab), QT.Q8_0)}
    for il, types in enumerate(LAYER_TYPES):
        p = f"blk.{il}."
        t[p + "attn_norm.weight"] = ((N_EMBD,), QT.F32)
        t[p + "attn_q.weight"] = ((N_EMBD, N_EMBD), types["attn_qkv"])
        t[p + "attn_q.bias"] = ((N_EMBD,), QT.F32)
        t[p + "attn_k.weight"] = ((N_EMBD, kv_dim), types["attn_qkv"])
        t[p + "attn_k.bias"] = ((kv_dim,), QT.F32)
        t[p + "attn_v.weight"] = ((N_EMBD, kv_dim), types["attn_qkv"])
        t[p + "attn_v.bias"] = ((kv_dim,), QT.F32)
        t[p + "attn_output.weight"] = ((N_EMBD, N_EMBD), types["attn_output"])
        t[p + "ffn_norm.weight"] = ((N_EMBD,), QT.F32)
        t[p + "ffn_gate.weight"] = ((N_EMBD, N_FF), types["ffn_gate"])
        t[p + "ffn_up.weight"] = ((N_EMBD, N_FF), types["ffn_up"])
        t[p + "ffn_down.weight"] = ((N_FF, N_EMBD), types["ffn_down"])
    t["output_norm.weight"] = ((N_EMBD,), QT.F32)
    t["output.weight"] = ((N_EMBD, n_vocab), QT.Q8_0)
    return t


def verify(path: Path, src: gguf_header.Header, copied: list[str], n_vocab: int, check_reader: bool) -> None:
    """Re-parse the written file with the independent parser in gguf_header."""
    h = gguf_header.read_header(path)
    for key in copied:
        if h.kvs[key].raw != src.kvs[key].raw:
            raise AssertionError(f"metadata {key} differs from the source model")
    want_kv = {
        "general.architecture": b"qwen2",
        f"{ARCH}.block_count": N_LAYER, f"{ARCH}.context_length": N_CTX,
        f"{ARCH}.embedding_length": N_EMBD, f"{ARCH}.feed_forward_length": N_FF,
        f"{ARCH}.attention.head_count": N_HEAD, f"{ARCH}.attention.head_count_kv": N_HEAD_KV,
    }
    for key, val in want_kv.items():
        if h.kvs[key].value != val:
            raise AssertionError(f"{key} = {h.kvs[key].value!r}, expected {val!r}")
    want = expected_tensors(n_vocab)
    got = {t.name: (t.shape, QT(t.ggml_type)) for t in h.tensors}
    if got != want:
        raise AssertionError(f"tensor table mismatch:\n got {got}\nwant {want}")
    end = 0
    for t in h.tensors:
        block, type_size = gguf.GGML_QUANT_SIZES[QT(t.ggml_type)]
        n = int(np.prod(t.shape))
        assert t.shape[0] % block == 0, t.name
        nbytes = n // block * type_size
        if t.offset % h.alignment or t.offset < end:
            raise AssertionError(f"{t.name}: bad offset {t.offset}")
        end = t.offset + nbytes
        log(f"  {t.name:26s} {QT(t.ggml_type).name:5s} {list(t.shape)} @ {h.data_offset + t.offset}")
    if h.data_offset + end > h.file_size:
        raise AssertionError("tensor data runs past the end of the file")
    if check_reader:
        r = gguf.GGUFReader(path)
        for t in r.tensors:
            exp_shape, exp_type = want[t.name]
            if t.tensor_type != exp_type or tuple(int(s) for s in t.shape) != exp_shape:
                raise AssertionError(f"GGUFReader: {t.name} mismatch")
            if not np.all(np.isfinite(gguf.quants.dequantize(t.data, t.tensor_type))):
                raise AssertionError(f"{t.name}: non-finite values")
        log(f"GGUFReader read back {len(r.tensors)} tensors, {len(r.fields)} fields")
    log(f"verified {len(h.tensors)} tensors, {len(h.kvs)} metadata keys, data offset {h.data_offset}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output .gguf path")
    ap.add_argument("--source", type=Path, default=None,
                    help="real Qwen2 GGUF to copy tokenizer.* metadata from "
                         "(default: the cached model from scripts/fetch-test-model)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--check-reader", action="store_true",
                    help="also read the result back with gguf.GGUFReader and dequantize "
                         "every tensor (slow: ~30 s for the 150k-entry tokenizer arrays)")
    args = ap.parse_args()
    source = args.source or find_default_source()
    if not source.is_file():
        print(f"make-tiny-model: source model {source} not found; run scripts/fetch-test-model "
              f"or pass --source", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build(args.out, source, args.seed, args.check_reader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
