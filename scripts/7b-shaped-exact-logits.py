#!/usr/bin/env python3
"""The 7B-shaped model's last-position logits computed exactly: float64 numpy from the weights
dequantized bit for bit (checked against gguf.quants), no activation quantization.

    7b-shaped-exact-logits.py FIRST_SHARD 785,6722,315,9625,374     (prompt token ids)

Prints the top-10 [id, logit] as JSON. A diagnosis tool, not part of any test: llama.cpp's CPU
dot products quantize activations to 8 bits, which on this random 28-layer model moves its logits
by up to 0.2; this pass tells whose logits are exact (see README, "The 7B-shaped model"). About
2 minutes for one token, 6 for five (CPU, pages the 4.7 GB through memory maps).
"""
import json
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gguf_header  # noqa: E402

first = sys.argv[1]
paths = [first, first.replace("-00001-of-", "-00002-of-")]
T = {}
for p in paths:
    h = gguf_header.read_header(p, decode=False)
    for t in h.tensors:
        T[t.name] = (p, h.data_offset + t.offset, t.shape, QT(t.ggml_type))
mm = {p: np.memmap(p, dtype=np.uint8, mode="r") for p in paths}


def raw(name):
    p, off, shape, qt = T[name]
    block, size = gguf.GGML_QUANT_SIZES[qt]
    n = int(np.prod(shape))
    return mm[p][off: off + n // block * size], shape, qt


def vec(name):
    r, shape, qt = raw(name)
    assert qt == QT.F32
    return r.view(np.float32).astype(np.float64)


def q4k_rows(b):  # b: (R, nb, 144) uint8 -> (R, nb*256) float32
    R, nb, _ = b.shape
    d = b[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    dmin = b[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    s = b[..., 4:16]
    sc = np.empty((R, nb, 8), np.uint8); m = np.empty((R, nb, 8), np.uint8)
    sc[..., :4] = s[..., 0:4] & 63; m[..., :4] = s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 0xF) | ((s[..., 0:4] >> 6) << 4)
    m[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    qs = b[..., 16:].reshape(R, nb, 4, 32)
    q = np.stack([qs & 0xF, qs >> 4], axis=3).reshape(R, nb, 8, 32).astype(np.float32)
    w = (d[..., None] * sc)[..., None] * q - (dmin[..., None] * m)[..., None]
    return w.reshape(R, nb * 256)


def q6k_rows(b):
    R, nb, _ = b.shape
    ql = b[..., 0:128]; qh = b[..., 128:192]
    sc = b[..., 192:208].copy().view(np.int8).astype(np.float32)
    d = b[..., 208:210].copy().view(np.float16)[..., 0].astype(np.float32)
    out = np.empty((R, nb, 256), np.float32)
    for half in range(2):
        l_ = ql[..., 64 * half: 64 * half + 64]; h_ = qh[..., 32 * half: 32 * half + 32]
        a, c = l_[..., :32], l_[..., 32:]
        q1 = ((a & 0xF) | ((h_ & 3) << 4)).astype(np.int16) - 32
        q2 = ((c & 0xF) | (((h_ >> 2) & 3) << 4)).astype(np.int16) - 32
        q3 = ((a >> 4) | (((h_ >> 4) & 3) << 4)).astype(np.int16) - 32
        q4 = ((c >> 4) | (((h_ >> 6) & 3) << 4)).astype(np.int16) - 32
        base = 128 * half
        for k, q in enumerate((q1, q2, q3, q4)):
            s = sc[..., 8 * half + 2 * k: 8 * half + 2 * k + 2]  # is = l/16 -> two scales of 16
            sfull = np.repeat(s, 16, axis=-1)
            out[..., base + 32 * k: base + 32 * k + 32] = d[..., None] * sfull * q
    return out.reshape(R, nb * 256)


ROWS = {QT.Q4_K: (144, q4k_rows), QT.Q6_K: (210, q6k_rows)}


def rows_of(name, r0, r1):
    r, shape, qt = raw(name)
    cols = shape[0]; nb = cols // 256
    bs, f = ROWS[qt]
    b = r.reshape(-1, nb, bs)[r0:r1]
    return f(np.asarray(b))


def matvec(name, x):
    _, _, shape, qt = T[name]
    R = shape[1]
    y = np.empty(R, np.float64)
    x32 = x.astype(np.float32)
    step = max(1, (1 << 25) // shape[0])
    for r0 in range(0, R, step):
        w = rows_of(name, r0, min(R, r0 + step))
        y[r0: r0 + w.shape[0]] = w.astype(np.float64) @ x
    return y


def selftest():
    for name in ("blk.0.ffn_down.weight", "blk.0.ffn_gate.weight"):
        r, shape, qt = raw(name)
        nb = shape[0] // 256; bs = ROWS[qt][0]
        b = np.asarray(r.reshape(-1, nb, bs)[:3])
        want = gguf.quants.dequantize(b.reshape(3, -1), qt)
        got = rows_of(name, 0, 3)
        assert np.array_equal(want, got), (name, np.abs(want - got).max())
    print("dequant self-test ok", flush=True)


def rms(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w


def rope(x, n_heads):
    """NEOX rotation (llama.cpp's for qwen2): pairs (i, i + 64) of each 128-wide head."""
    n, _ = x.shape
    x = x.reshape(n, n_heads, 128)
    inv = 1e6 ** (-np.arange(64) * 2 / 128)
    ang = np.arange(n)[:, None] * inv[None, :]
    c, s_ = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :64], x[..., 64:]
    return np.concatenate([a * c - b * s_, a * s_ + b * c], axis=-1).reshape(n, -1)


def matmul(name, X):  # X: (n, cols) -> (n, rows)
    _, _, shape, qt = T[name]
    R = shape[1]
    Y = np.empty((X.shape[0], R), np.float64)
    step = max(1, (1 << 25) // shape[0])
    for r0 in range(0, R, step):
        w = rows_of(name, r0, min(R, r0 + step)).astype(np.float64)
        Y[:, r0: r0 + w.shape[0]] = X @ w.T
    return Y


def main(tokens):
    selftest()
    n = len(tokens)
    h = np.stack([rows_of("token_embd.weight", t, t + 1)[0] for t in tokens]).astype(np.float64)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for L in range(28):
        p = f"blk.{L}."
        xn = rms(h, vec(p + "attn_norm.weight"))
        q = rope(matmul(p + "attn_q.weight", xn) + vec(p + "attn_q.bias"), 28)
        k = rope(matmul(p + "attn_k.weight", xn) + vec(p + "attn_k.bias"), 4)
        v = matmul(p + "attn_v.weight", xn) + vec(p + "attn_v.bias")
        heads = []
        for i in range(28):
            g = i // 7
            qi, ki, vi = q[:, i * 128:(i + 1) * 128], k[:, g * 128:(g + 1) * 128], v[:, g * 128:(g + 1) * 128]
            sc = qi @ ki.T / np.sqrt(128) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            heads.append((sc / sc.sum(axis=1, keepdims=True)) @ vi)
        h = h + matmul(p + "attn_output.weight", np.concatenate(heads, axis=1))
        xn = rms(h, vec(p + "ffn_norm.weight"))
        g = matmul(p + "ffn_gate.weight", xn); u = matmul(p + "ffn_up.weight", xn)
        h = h + matmul(p + "ffn_down.weight", g / (1 + np.exp(-g)) * u)
        print(L, float(np.sqrt(np.mean(h[-1] ** 2))), flush=True)
    logits = matvec("output.weight", rms(h[-1], vec("output_norm.weight")))
    order = np.argsort(-logits)[:10]
    print(json.dumps([[int(i), float(logits[i])] for i in order]))


main([int(t) for t in sys.argv[2].split(",")])
