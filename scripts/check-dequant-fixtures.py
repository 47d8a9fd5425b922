#!/usr/bin/env python3
"""Cross-check tests/fixtures/dequant.json with an independent dequantizer.

    check-dequant-fixtures.py [FIXTURE.json] [--model REAL.gguf]

A scalar port of ggml's dequantize_row_* (ggml-quants.c block layouts, f32
arithmetic in C evaluation order, no FMA), written without gguf.quants. Every
case must match `values_f32_bits` bit for bit; with --model, the bytes of
real-model cases are also compared with the model file at `file_offset`.
It doubles as a readable reference for porting the dequantizers to Rust.
Needs only numpy (use the venv from scripts/python-env).
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

f32 = np.float32


def h2f(b, o): return f32(np.frombuffer(b[o:o+2], dtype="<f2")[0])
def deq(t, b):
    out = []
    if t == "F32": return list(np.frombuffer(b, "<f4"))
    if t == "F16": return [f32(x) for x in np.frombuffer(b, "<f2")]
    if t == "BF16": return list((np.frombuffer(b, "<u2").astype(np.uint32) << 16).view(np.float32))
    bs = {"Q4_0":18,"Q4_1":20,"Q5_0":22,"Q5_1":24,"Q8_0":34,"Q2_K":84,"Q3_K":110,"Q4_K":144,"Q5_K":176,"Q6_K":210}[t]
    for o in range(0, len(b), bs):
        x = b[o:o+bs]; y = [None]*(32 if bs < 40 else 256)
        if t in ("Q4_0","Q4_1"):
            d = h2f(x,0); m = h2f(x,2) if t=="Q4_1" else None; qs = x[4:] if m is not None else x[2:]
            for j in range(16):
                for k, q in ((j, qs[j] & 15), (j+16, qs[j] >> 4)):
                    y[k] = d*f32(q) + m if m is not None else d*f32(q-8)
        elif t in ("Q5_0","Q5_1"):
            d = h2f(x,0); m = h2f(x,2) if t=="Q5_1" else None; p = 4 if m is not None else 2
            qh = struct.unpack_from("<I", x, p)[0]; qs = x[p+4:]
            for j in range(16):
                x0 = (qs[j] & 15) | (((qh >> j) & 1) << 4); x1 = (qs[j] >> 4) | (((qh >> (j+16)) & 1) << 4)
                y[j] = d*f32(x0) + m if m is not None else d*f32(x0-16)
                y[j+16] = d*f32(x1) + m if m is not None else d*f32(x1-16)
        elif t == "Q8_0":
            d = h2f(x,0); y = [d*f32(v) for v in np.frombuffer(x[2:], np.int8)]
        elif t == "Q2_K":
            sc = x[0:16]; q = x[16:80]; d = h2f(x,80); dmin = h2f(x,82); n=0; is_=0
            for half in range(2):
                qq = q[half*32:half*32+32]
                for shift in (0,2,4,6):
                    s = sc[is_]; is_+=1; dl = d*f32(s & 15); ml = dmin*f32(s >> 4)
                    for l in range(16): y[n] = dl*f32((qq[l] >> shift) & 3) - ml; n+=1
                    s = sc[is_]; is_+=1; dl = d*f32(s & 15); ml = dmin*f32(s >> 4)
                    for l in range(16): y[n] = dl*f32((qq[l+16] >> shift) & 3) - ml; n+=1
        elif t == "Q3_K":
            hm = x[0:32]; q = x[32:96]; a = x[96:108]; d = h2f(x,108)
            k1, k2 = 0x03030303, 0x0f0f0f0f
            aux = list(struct.unpack("<3I", a)); tmp = aux[2]
            aux = [(aux[0] & k2) | (((tmp >> 0) & k1) << 4), (aux[1] & k2) | (((tmp >> 2) & k1) << 4),
                   ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4), ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4)]
            scales = np.frombuffer(struct.pack("<4I", *aux), np.int8)
            n=0; is_=0; m=1
            for half in range(2):
                qq = q[half*32:half*32+32]
                for shift in (0,2,4,6):
                    dl = d*f32(int(scales[is_])-32); is_+=1
                    for l in range(16): y[n] = dl*f32(((qq[l]>>shift)&3) - (0 if hm[l]&m else 4)); n+=1
                    dl = d*f32(int(scales[is_])-32); is_+=1
                    for l in range(16): y[n] = dl*f32(((qq[l+16]>>shift)&3) - (0 if hm[l+16]&m else 4)); n+=1
                    m <<= 1
        elif t in ("Q4_K","Q5_K"):
            d = h2f(x,0); dmin = h2f(x,2); s = x[4:16]
            def gsm(j):
                if j < 4: return s[j] & 63, s[j+4] & 63
                return (s[j+4] & 0xF) | ((s[j-4] >> 6) << 4), (s[j+4] >> 4) | ((s[j] >> 6) << 4)
            qh = x[16:48] if t=="Q5_K" else None; ql = x[48:] if t=="Q5_K" else x[16:]
            n=0; u1, u2 = 1, 2
            for j in range(4):
                sc, mm = gsm(2*j); d1 = d*f32(sc); m1 = dmin*f32(mm)
                sc, mm = gsm(2*j+1); d2 = d*f32(sc); m2 = dmin*f32(mm)
                qq = ql[j*32:j*32+32]
                for l in range(32): y[n] = d1*f32((qq[l]&15) + (16 if qh is not None and qh[l]&u1 else 0)) - m1; n+=1
                for l in range(32): y[n] = d2*f32((qq[l]>>4) + (16 if qh is not None and qh[l]&u2 else 0)) - m2; n+=1
                u1 <<= 2; u2 <<= 2
        elif t == "Q6_K":
            ql = x[0:128]; qh = x[128:192]; sc = np.frombuffer(x[192:208], np.int8); d = h2f(x,208)
            for half in range(2):
                L = ql[half*64:]; H = qh[half*32:]; S = sc[half*8:]; base = half*128
                for l in range(32):
                    is_ = l // 16
                    q1 = ((L[l] & 15) | (((H[l] >> 0) & 3) << 4)) - 32
                    q2 = ((L[l+32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32
                    q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
                    q4 = ((L[l+32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
                    y[base+l]    = (d*f32(int(S[is_+0])))*f32(q1)
                    y[base+l+32] = (d*f32(int(S[is_+2])))*f32(q2)
                    y[base+l+64] = (d*f32(int(S[is_+4])))*f32(q3)
                    y[base+l+96] = (d*f32(int(S[is_+6])))*f32(q4)
        out += y
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", type=Path,
                    default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dequant.json")
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    doc = json.loads(args.fixture.read_text())
    model = open(args.model, "rb") if args.model else None
    bad = 0
    for c in doc["cases"]:
        b = bytes.fromhex(c["bytes_hex"])
        if model is not None and c["file_offset"] is not None:
            model.seek(c["file_offset"])
            if model.read(len(b)) != b:
                bad += 1
                print(f"BYTES DIFFER from model: {c['type']} {c['source']}")
        got = np.array(deq(c["type"], b), dtype=np.float32).view(np.uint32).tolist()
        if got != c["values_f32_bits"]:
            bad += 1
            n = sum(x != y for x, y in zip(got, c["values_f32_bits"]))
            print(f"MISMATCH {c['type']} {c['source']}: {n} values differ")
    print(f"{len(doc['cases'])} cases checked, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
