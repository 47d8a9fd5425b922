#!/usr/bin/env python3
"""Long-context golden fixtures from llama.cpp (via llama-cpp-python): prompts of more than
3,000 tokens, with the model's default RoPE and with YaRN forced (factor 4 over an original
context of 32,768, as Qwen's model card advises for 128K), plus a short YaRN prompt (the one CI
runs on the real model) and a long prompt for the tiny model (native and browser tests).

Run inside the venv made by scripts/golden/build-llama-cpp:

    ~/.cache/qwen-webgpu/llama-venv/bin/python scripts/golden/make-long-goldens.py

Writes tests/fixtures/golden/long_context.json. Shares make-goldens.py's engine wrapper and
record format (see scripts/golden/README.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("make_goldens", HERE / "make-goldens.py")
mg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mg)

N_CTX = 4096
GREEDY_STEPS = 16
# YaRN as forced on both sides: llama.cpp's --rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 32768.
YARN = {"type": "yarn", "factor": 4.0, "original_context_length": 32768}
DOCS = mg.REPO / "tests" / "fixtures" / "docs"
MIN_LONG_TOKENS = 3000


class LongEngine(mg.Engine):
    """make-goldens.py's engine with a 4,096-token context and optionally YaRN."""

    def __init__(self, model_path: Path, yarn: bool, q8_0_cache: bool = False):
        self.path = model_path
        kwargs = {}
        if yarn:
            kwargs = {
                "rope_scaling_type": llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN,
                "rope_freq_scale": 1.0 / YARN["factor"],
                "yarn_orig_ctx": YARN["original_context_length"],
            }
        if q8_0_cache:
            # llama.cpp quantizes the V cache only with flash attention.
            kwargs.update({"type_k": llama_cpp.GGML_TYPE_Q8_0, "type_v": llama_cpp.GGML_TYPE_Q8_0, "flash_attn": True})
            # Since ggml-org/llama.cpp#21038 a quantized cache holds Q, K and V rotated by a
            # Hadamard matrix (the output rotated back), which spreads Qwen2's outlier K channels
            # over each block; our q8_0 cache holds the plain values, so the fixture is llama.cpp's
            # plain q8_0 (read when the context is created).
            os.environ["LLAMA_ATTN_ROT_DISABLE"] = "1"
        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=N_CTX,
            n_threads=mg.N_THREADS,
            n_threads_batch=mg.N_THREADS,
            seed=mg.SEED,
            verbose=False,
            **kwargs,
        )
        os.environ.pop("LLAMA_ATTN_ROT_DISABLE", None)
        self.n_vocab = self.llm.n_vocab()
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)


def long_document() -> str:
    """The fixture documents, each section numbered, repeated until long enough."""
    docs = [p.read_text(encoding="utf-8") for p in sorted(DOCS.iterdir()) if p.suffix in (".md", ".txt")]
    parts = []
    for i in range(6):
        for j, doc in enumerate(docs):
            parts.append(f"## Excerpt {i * len(docs) + j + 1}\n\n{doc.strip()}\n")
    return "\n".join(parts)


def chat_ids(eng: LongEngine, document: str, question: str, min_tokens: int) -> tuple[list[dict], list[int]]:
    """A document Q&A chat of at least `min_tokens` prompt tokens (cut by whole sections)."""
    sections = document.split("\n## ")
    for n in range(1, len(sections) + 1):
        text = "\n## ".join(sections[:n])
        messages = [{"role": "user", "content": f"{text}\n\nQuestion: {question}".strip()}]
        prompt = mg.render_chat(eng, messages, add_generation_prompt=True)
        ids = eng.tokenize(prompt, special=True)
        if len(ids) >= min_tokens:
            return messages, ids
    raise SystemExit(f"the documents give fewer than {min_tokens} tokens")


def case(eng: LongEngine, name: str, messages: list[dict], ids: list[int], rope: dict | None) -> dict:
    logits = eng.eval_prompt(ids)
    rec = {"name": name, "rope_scaling": rope, "messages": messages, "n_tokens": len(ids), "prompt_ids": ids}
    rec.update(mg.logit_record(logits))
    gen, margins, top5, top1_logits, stop_id = eng.greedy(ids, GREEDY_STEPS)
    rec.update(
        {
            "generated_ids": gen,
            "stop_id": stop_id,
            "margins": margins,
            "top1_logits": top1_logits,
            "top5": top5,
            "generated_text": eng.detokenize([t for t in gen if t not in mg.STOP_IDS], unparse_special=False),
        }
    )
    print(
        f"  {name}: n={len(ids)} top1={rec['top'][0]['id']} margin={rec['margin']:.4f} "
        f"min_greedy_margin={min(margins):.4f} text={rec['generated_text']!r}",
        flush=True,
    )
    return rec


def make_cases(want: set[str] | None) -> list[dict]:
    """The fixture's cases (those in `want`, or all), each from its own llama.cpp context."""
    document = long_document()
    question = "What are the documents about? Answer in one sentence."
    short_question = "Name three uses of a lighthouse."
    cases = []
    # (name, model, yarn, q8_0 cache, long prompt?)
    plans = [
        ("long_default", mg.MODEL, False, False, True),
        ("long_yarn", mg.MODEL, True, False, True),
        ("short_yarn", mg.MODEL, True, False, False),
        ("short_q8_0_cache", mg.MODEL, False, True, False),
        # The tiny model has the real tokenizer and chat template: the same chat, so the
        # browser test can send it through the chat API.
        ("tiny_long", mg.TINY, False, False, True),
    ]
    for name, model, yarn, q8, long in plans:
        if want is not None and name not in want:
            continue
        eng = LongEngine(model, yarn=yarn, q8_0_cache=q8)
        if long:
            messages, ids = chat_ids(eng, document, question, MIN_LONG_TOKENS)
        else:
            messages, ids = chat_ids(eng, "", short_question, 0)
        rec = case(eng, name, messages, ids, YARN if yarn else None)
        if q8:
            rec["kv_cache"] = "q8_0"
        if model != mg.MODEL:
            rec["model_sha256"] = mg.MODEL_SHA[model]
        cases.append(rec)
        del eng
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=None, help="recompute only these cases of the existing file")
    args = ap.parse_args()
    t0 = time.time()
    for path in (mg.MODEL, mg.TINY):
        if not path.exists():
            print(f"model not found: {path}", file=sys.stderr)
            return 1
        mg.MODEL_SHA[path] = mg.sha256_file(path)
    want = set(args.only) if args.only else None
    cases = make_cases(want)
    if want is not None:
        existing = json.loads((mg.GOLDEN / "long_context.json").read_text(encoding="utf-8"))["cases"]
        fresh = {c["name"]: c for c in cases}
        cases = [fresh.pop(c["name"], c) for c in existing] + list(fresh.values())
    provenance = mg.provenance(LongEngine(mg.MODEL, yarn=False))
    provenance["settings"]["n_ctx"] = N_CTX
    provenance["notes"] = (
        "Same record format as logits.json (last-position top-10, margin, stats) and greedy.json (greedy ids, "
        "margins, top-5 per step). Chat prompts rendered by the GGUF template with special=True (`messages` "
        "is each case's chat; prompt_ids its render with the default system message). long_*: a document "
        "Q&A of more than 3,000 tokens; short_*: a one-line question. *_yarn: YaRN forced "
        "(rope_scaling_type=yarn, rope_freq_scale=1/factor, yarn_orig_ctx); short_q8_0_cache: K and V "
        "cached as q8_0 (type_k=type_v=q8_0, flash_attn=True, LLAMA_ATTN_ROT_DISABLE=1: plain q8_0 blocks, no Hadamard rotation). tiny_long: the tiny model (its sha256 in "
        "the case), the same chat as long_default. n_ctx 4096."
    )
    mg.write("long_context.json", {"provenance": provenance, "cases": cases})
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
