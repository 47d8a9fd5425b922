#!/usr/bin/env python3
"""Generate golden reference fixtures from llama.cpp (via llama-cpp-python).

Run inside the venv made by scripts/golden/build-llama-cpp:

    ~/.cache/qwen-webgpu/llama-venv/bin/python scripts/golden/make-goldens.py

Writes JSON files under tests/fixtures/golden/. CI never runs this script; it
only reads the committed JSON. See scripts/golden/README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import math
import os
import platform
import sys
import time
from importlib.metadata import version as pkg_version
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np

import llama_cpp
from llama_cpp import Llama

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "fixtures" / "golden"
CORPUS = REPO / "tests" / "fixtures" / "text" / "tokenizer-corpus.json"
CACHE = Path(os.environ.get("QWEN_WEBGPU_CACHE", Path.home() / ".cache" / "qwen-webgpu"))
MODEL = CACHE / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
# scripts/fetch-test-model --tiny writes qwen2-tiny-random.gguf (scripts/make-tiny-model.py)
TINY = next(
    (p for p in (CACHE / "models" / n for n in ("qwen2-tiny-random.gguf", "tiny-qwen2.gguf")) if p.exists()),
    CACHE / "models" / "qwen2-tiny-random.gguf",
)

# scripts/make-7b-shaped-model writes both shards; llama.cpp finds the second beside the first.
MODEL_7B_SHAPED = CACHE / "models" / "qwen2.5-7b-shaped-random-q4_k_m-00001-of-00002.gguf"

N_THREADS = 2
SEED = 0
N_CTX = 2048
IM_END = 151645
ENDOFTEXT = 151643
STOP_IDS = (IM_END, ENDOFTEXT)

# ---------------------------------------------------------------- prompts

LOGIT_PROMPTS = [
    ("english", "The capital of France is"),
    ("code_python", "def fibonacci(n):\n    if n <= 1:\n        return n\n    return"),
    ("chinese", "人工智能是计算机科学的一个分支，它"),
    ("single_word", "Hello"),
    ("leading_whitespace", "   indented text that starts with spaces and"),
    ("numbers", "1, 1, 2, 3, 5, 8, 13, 21,"),
    ("code_rust", "fn main() {\n    let numbers = vec![1, 2, 3];\n    for n in &numbers {\n"),
    (
        "long_paragraph",
        "The history of computing is a story of steady abstraction. Early machines "
        "were programmed by physically rewiring circuits, and every change of task "
        "required hours of careful work by trained operators. The stored-program "
        "concept changed that: instructions became data, held in the same memory as "
        "the numbers they manipulated. Assemblers, then compilers, then operating "
        "systems followed, each layer hiding the details of the one below it. Today "
        "a programmer can write a few lines of a high-level language and have them "
        "run, unchanged, on a phone, a laptop, or a rack of servers on the other side "
        "of the world. Yet underneath all of it, the",
    ),
]

GREEDY_PROMPTS = [
    ("python_reverse", "Write a Python function that reverses a string."),
    ("capital_france", "What is the capital of France? Answer in one word."),
    ("chinese_recursion", "用一句话解释什么是递归。"),
    ("three_primes", "List three prime numbers."),
]

CHAT_CONVERSATIONS = [
    ("hash_map", [{"role": "user", "content": "Explain what a hash map is in two sentences."}]),
    (
        "multi_turn_system",
        [
            {"role": "system", "content": "You are a concise assistant. Always answer in at most one sentence."},
            {"role": "user", "content": "My name is Alice and I like Rust."},
            {"role": "assistant", "content": "Nice to meet you, Alice! Rust is a great language."},
            {"role": "user", "content": "What is my name, and which language do I like?"},
        ],
    ),
    ("haiku_rust", [{"role": "user", "content": "Write a haiku about the Rust borrow checker."}]),
]

TINY_PROMPTS = [
    ("english", "The capital of France is"),
    ("code_python", "def add(a, b):\n    return"),
    ("chinese", "你好，世界"),
    ("single_word", "Hello"),
]

# Short, because our engine runs the 7B-shaped model on a CPU rasterizer in tests (minutes per
# prompt); the greedy prompt has at most 4 tokens, as the browser test's completion does.
SHAPED_7B_LOGIT_PROMPTS = [
    ("english", "The capital of France is"),
    ("single_word", "Hello"),
]
SHAPED_7B_GREEDY = ("single_word", "Hello", 2)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "object",
                    "description": "Where to look up the weather.",
                    "properties": {
                        "city": {"type": "string", "description": "City name, e.g. Paris"},
                        "country": {"type": "string", "description": "ISO 3166 country code"},
                    },
                    "required": ["city"],
                },
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_code",
        "description": "Search a code base for a pattern.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Regular expression to search for."},
                "filters": {
                    "type": "object",
                    "properties": {
                        "languages": {"type": "array", "items": {"type": "string"}},
                        "max_results": {"type": "integer", "minimum": 1, "maximum": 100},
                        "paths": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "glob": {"type": "string"},
                                    "exclude": {"type": "boolean"},
                                },
                            },
                        },
                    },
                },
            },
            "required": ["query"],
        },
    },
}

TEMPLATE_CASES = [
    {
        "name": "single_user",
        "messages": [{"role": "user", "content": "Hello!"}],
        "tools": None,
        "add_generation_prompt": True,
    },
    {
        "name": "single_user_no_generation_prompt",
        "messages": [{"role": "user", "content": "Hello!"}],
        "tools": None,
        "add_generation_prompt": False,
    },
    {
        "name": "system_user",
        "messages": [
            {"role": "system", "content": "You are a pirate. Answer like one."},
            {"role": "user", "content": "Where is the treasure?"},
        ],
        "tools": None,
        "add_generation_prompt": True,
    },
    {
        "name": "multi_turn",
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "2+2 equals 4."},
            {"role": "user", "content": "And times 3?"},
        ],
        "tools": None,
        "add_generation_prompt": True,
    },
    {
        "name": "multi_turn_ending_with_assistant",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": "Hi."},
        ],
        "tools": None,
        "add_generation_prompt": False,
    },
    {
        "name": "non_ascii",
        "messages": [
            {"role": "user", "content": "用一句话解释什么是递归。🙂 Ünïcödé\ttab\n\nnew paragraph  "},
            {"role": "assistant", "content": "递归就是函数调用自身。👍🏽"},
            {"role": "user", "content": "日本語でも説明してください 🇯🇵"},
        ],
        "tools": None,
        "add_generation_prompt": True,
    },
    {
        "name": "tools_defined",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "add_generation_prompt": True,
    },
    {
        "name": "tools_with_system",
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Tokyo, in fahrenheit?"},
        ],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "add_generation_prompt": True,
    },
    {
        "name": "tool_call_and_result",
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": {"location": {"city": "Paris", "country": "FR"}, "unit": "celsius"},
                        },
                    }
                ],
            },
            {"role": "tool", "name": "get_weather", "content": "{\"temperature\": 18, \"condition\": \"cloudy\"}"},
        ],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "add_generation_prompt": True,
    },
    {
        "name": "tool_call_string_arguments_two_results",
        "messages": [
            {"role": "system", "content": "Use tools when helpful."},
            {"role": "user", "content": "Weather in Paris and Berlin?"},
            {
                "role": "assistant",
                "content": "Let me check both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\": {\"city\": \"Paris\"}}"},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\": {\"city\": \"Berlin\"}}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Paris: 18°C, cloudy ☁️"},
            {"role": "tool", "tool_call_id": "call_2", "content": "Berlin: 12°C, rain 🌧️"},
            {"role": "assistant", "content": "Paris is 18°C and cloudy; Berlin is 12°C with rain."},
            {"role": "user", "content": "Thanks!"},
        ],
        "tools": [WEATHER_TOOL, SEARCH_TOOL],
        "add_generation_prompt": True,
    },
]

# ---------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fl(x) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"non-finite value {v!r}")
    return v


def dump(obj, indent=0) -> str:
    """JSON with 2-space indentation, but lists/dicts of scalars kept on one line."""
    pad = "  " * indent
    inner = "  " * (indent + 1)

    def scalar(v):
        return v is None or isinstance(v, (bool, int, float, str))

    if isinstance(obj, dict):
        if not obj:
            return "{}"
        if all(scalar(v) for v in obj.values()) and len(obj) <= 4:
            return json.dumps(obj, ensure_ascii=False, allow_nan=False)
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        if all(scalar(v) for v in obj) and not any(isinstance(v, str) for v in obj):
            return json.dumps(obj, ensure_ascii=False, allow_nan=False)
        if all(isinstance(v, dict) and all(scalar(x) for x in v.values()) and len(v) <= 4 for v in obj):
            return "[" + ", ".join(json.dumps(v, ensure_ascii=False, allow_nan=False) for v in obj) + "]"
        items = [f"{inner}{dump(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def write(name: str, obj) -> None:
    path = GOLDEN / name
    text = dump(obj) + "\n"
    json.loads(text)  # round-trip check
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(REPO)} ({len(text.encode())} bytes)", flush=True)


class Engine:
    def __init__(self, model_path: Path, logits_all: bool = False):
        self.path = model_path
        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=N_CTX,
            n_threads=N_THREADS,
            n_threads_batch=N_THREADS,
            seed=SEED,
            logits_all=logits_all,
            verbose=False,
        )
        self.n_vocab = self.llm.n_vocab()
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def tokenize(self, text: str, special: bool) -> list[int]:
        return [int(t) for t in self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)]

    def detokenize(self, ids: list[int], unparse_special: bool) -> str:
        """llama.cpp's own llama_detokenize (no 32-byte per-piece limit)."""
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        size = 64 + 64 * len(ids)
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), buf, size, False, unparse_special)
        if n < 0:
            size = -n + 1
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), buf, size, False, unparse_special)
        return buf.raw[:n].decode("utf-8", errors="replace")

    def last_logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def eval_prompt(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return self.last_logits()

    def eval_next(self, tok: int) -> np.ndarray:
        self.llm.eval([tok])
        return self.last_logits()

    def greedy(self, ids: list[int], n: int):
        logits = self.eval_prompt(ids)
        out, margins, top5, top1_logits = [], [], [], []
        stop_id = None
        for _ in range(n):
            order = topk(logits, 5)
            tok = int(order[0])
            assert tok == int(np.argmax(logits))
            out.append(tok)
            margins.append(fl(logits[order[0]] - logits[order[1]]))
            top1_logits.append(fl(logits[order[0]]))
            top5.append([int(i) for i in order])
            if tok in STOP_IDS:
                stop_id = tok
                break
            if len(out) == n:
                break
            logits = self.eval_next(tok)
        return out, margins, top5, top1_logits, stop_id


def topk(logits: np.ndarray, k: int) -> np.ndarray:
    # stable: sort by (-logit, id) so ties resolve to the lowest id like argmax
    idx = np.lexsort((np.arange(len(logits)), -logits.astype(np.float64)))
    return idx[:k]


def logit_record(logits: np.ndarray, k: int = 10) -> dict:
    assert np.all(np.isfinite(logits)), "non-finite logits"
    order = topk(logits, k)
    l64 = logits.astype(np.float64)
    m = float(l64.max())
    lse = m + math.log(float(np.exp(l64 - m).sum()))
    return {
        "top": [{"id": int(i), "logit": fl(logits[i])} for i in order],
        "margin": fl(logits[order[0]] - logits[order[1]]),
        "stats": {
            "n_vocab": int(len(logits)),
            "mean": fl(l64.mean()),
            "std": fl(l64.std()),
            "logsumexp": fl(lse),
        },
    }


def provenance(engine: Engine, extra: dict | None = None) -> dict:
    meta = engine.llm.metadata
    d = {
        "generator": "scripts/golden/make-goldens.py",
        "llama_cpp_python_version": llama_cpp.__version__,
        "model_file": engine.path.name,
        "model_sha256": MODEL_SHA[engine.path],
        "model_size_bytes": engine.path.stat().st_size,
        "model_name": meta.get("general.name"),
        "n_vocab": engine.n_vocab,
        "settings": {
            "n_ctx": N_CTX,
            "n_threads": N_THREADS,
            "seed": SEED,
            "n_batch": engine.llm.n_batch,
            "backend": "cpu",
        },
        "platform": f"{platform.system()} {platform.machine()} python {platform.python_version()}",
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if extra:
        d.update(extra)
    return d


MODEL_SHA: dict[Path, str] = {}

# ---------------------------------------------------------------- fixtures


def make_logits(eng: Engine, eng_all: Engine | None) -> None:
    cases = []
    for name, text in LOGIT_PROMPTS:
        ids = eng.tokenize(text, special=False)
        logits = eng.eval_prompt(ids)
        rec = {"name": name, "prompt": text, "prompt_ids": ids, "n_tokens": len(ids)}
        rec.update(logit_record(logits))
        if eng_all is not None:
            # per-position argmax from a logits_all=True context (same batch, all rows)
            eng_all.llm.reset()
            eng_all.llm.eval(ids)
            scores = np.array(eng_all.llm.scores[: len(ids)], dtype=np.float32)
            assert np.all(np.isfinite(scores))
            per_pos = []
            for row in scores:
                o = topk(row, 2)
                per_pos.append([int(o[0]), fl(row[o[0]] - row[o[1]])])
            rec["per_position_top1"] = per_pos
            diff = float(np.max(np.abs(scores[-1].astype(np.float64) - logits.astype(np.float64))))
            rec["logits_all_last_row_max_abs_diff"] = diff
            assert per_pos[-1][0] == rec["top"][0]["id"], "logits_all last row disagrees on argmax"
        cases.append(rec)
        print(f"  logits {name}: n={len(ids)} top1={rec['top'][0]['id']} margin={rec['margin']:.4f}", flush=True)
    write(
        "logits.json",
        {
            "provenance": provenance(
                eng,
                {
                    "notes": "Prompts tokenized with add_bos=False, special=False. `top` and `margin` are for the "
                    "LAST prompt position, read with llama_get_logits_ith(ctx, -1) from a logits_all=False context "
                    "(whole prompt decoded in one batch). `per_position_top1` is [argmax id, top1-top2] for every "
                    "position, from a separate logits_all=True context. Ties in top-k broken by lower id.",
                },
            ),
            "cases": cases,
        },
    )


def render_chat(eng: Engine, messages, add_generation_prompt=True, tools=None) -> str:
    tmpl = eng.llm.metadata["tokenizer.chat_template"]
    return hf_render(tmpl, messages, add_generation_prompt, tools, bos_token(eng), eos_token(eng))


def bos_token(eng: Engine) -> str:
    b = eng.llm.token_bos()
    return eng.llm._model.token_get_text(b) if b != -1 else ""


def eos_token(eng: Engine) -> str:
    e = eng.llm.token_eos()
    return eng.llm._model.token_get_text(e) if e != -1 else ""


def make_greedy(eng: Engine) -> None:
    n_steps = 32
    cases = []
    for name, question in GREEDY_PROMPTS:
        messages = [{"role": "user", "content": question}]
        prompt_text = render_chat(eng, messages, add_generation_prompt=True)
        ids = eng.tokenize(prompt_text, special=True)
        gen, margins, top5, top1_logits, stop_id = eng.greedy(ids, n_steps)
        # cross-check against llama-cpp-python's own sampler (temperature 0 = greedy)
        eng.llm.reset()
        comp = eng.llm.create_completion(ids, temperature=0.0, max_tokens=n_steps, seed=SEED)
        comp_text = comp["choices"][0]["text"]
        my_text = eng.detokenize([t for t in gen if t not in STOP_IDS], unparse_special=False)
        rec = {
            "name": name,
            "messages": messages,
            "prompt_text": prompt_text,
            "prompt_ids": ids,
            "max_new_tokens": n_steps,
            "generated_ids": gen,
            "stop_id": stop_id,
            "generated_text": my_text,
            "margins": margins,
            "top1_logits": top1_logits,
            "top5": top5,
            "create_completion_text": comp_text,
            "create_completion_finish_reason": comp["choices"][0]["finish_reason"],
            "matches_create_completion": comp_text == my_text,
        }
        cases.append(rec)
        print(
            f"  greedy {name}: {len(gen)} tokens stop={stop_id} min_margin={min(margins):.4f} "
            f"match={rec['matches_create_completion']} text={my_text!r}",
            flush=True,
        )
    write(
        "greedy.json",
        {
            "provenance": provenance(
                eng,
                {
                    "notes": "Prompt = model's GGUF chat template rendered with jinja2 (HF environment, default system "
                    "message, add_generation_prompt=True), tokenized with special=True, add_bos=False. Greedy argmax "
                    "decoding one token per llama_decode; stops after emitting <|im_end|> (151645) or <|endoftext|> "
                    "(151643), which is then the last element of generated_ids. margins[i] = top1-top2 logit at step i. "
                    "generated_text is llama_detokenize of generated_ids without the stop id.",
                },
            ),
            "cases": cases,
        },
    )


def make_chat_completion(eng: Engine) -> None:
    max_tokens = 48
    cases = []
    for name, messages in CHAT_CONVERSATIONS:
        eng.llm.reset()
        resp = eng.llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=max_tokens, seed=SEED)
        text = resp["choices"][0]["message"]["content"]
        # token ids: replay greedily on the same rendered prompt
        prompt_text = render_chat(eng, messages, add_generation_prompt=True)
        ids = eng.tokenize(prompt_text, special=True)
        gen, margins, _, _, stop_id = eng.greedy(ids, max_tokens)
        body = [t for t in gen if t not in STOP_IDS]
        replay_text = eng.detokenize(body, unparse_special=False)
        rec = {
            "name": name,
            "messages": messages,
            "max_tokens": max_tokens,
            "text": text,
            "finish_reason": resp["choices"][0]["finish_reason"],
            "usage": resp.get("usage"),
            "prompt_text": prompt_text,
            "prompt_ids": ids,
            "generated_ids": gen,
            "stop_id": stop_id,
            "margins": margins,
            "ids_match_text": replay_text == text,
        }
        cases.append(rec)
        print(
            f"  chat {name}: finish={rec['finish_reason']} ids_match={rec['ids_match_text']} text={text!r}",
            flush=True,
        )
    write(
        "chat_completion.json",
        {
            "provenance": provenance(
                eng,
                {
                    "chat_format": eng.llm.chat_format,
                    "notes": "text = llm.create_chat_completion(messages, temperature=0, max_tokens=48, seed=0). "
                    "generated_ids come from a step-by-step greedy replay on prompt_ids (template rendered with "
                    "jinja2, special=True); ids_match_text says whether their detokenization equals text.",
                },
            ),
            "cases": cases,
        },
    )


def make_tokenize(eng: Engine) -> None:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    cases = []
    n_diff = 0
    for text in corpus:
        ids = eng.tokenize(text, special=False)
        ids_sp = eng.tokenize(text, special=True)
        rt = eng.detokenize(ids, unparse_special=False)
        rt_sp = eng.detokenize(ids_sp, unparse_special=True)
        rec = {
            "text": text,
            "ids": ids,
            "ids_special": ids_sp,
            "detokenized": rt,
            "detokenized_special": rt_sp,
        }
        n_diff += ids != ids_sp
        cases.append(rec)
    print(f"  tokenize: {len(cases)} strings, {n_diff} differ with special=True", flush=True)
    write(
        "tokenize.json",
        {
            "provenance": provenance(
                eng,
                {
                    "corpus": str(CORPUS.relative_to(REPO)),
                    "notes": "ids = llm.tokenize(text.encode(), add_bos=False, special=False); ids_special = same with "
                    "special=True. detokenized = llama_detokenize(ids, remove_special=False, unparse_special=False); "
                    "detokenized_special = llama_detokenize(ids_special, unparse_special=True). Invalid UTF-8 "
                    "replaced with U+FFFD. (llama-cpp-python's own Llama.detokenize is not used: its 32-byte per-piece "
                    "buffer silently drops pieces longer than 32 bytes, e.g. long runs of spaces or '='.)",
                },
            ),
            "cases": cases,
        },
    )


# HF transformers' chat-template environment (transformers/utils/chat_template_utils.py)
def hf_tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def hf_raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def hf_strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def hf_env() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = hf_tojson
    env.globals["raise_exception"] = hf_raise_exception
    env.globals["strftime_now"] = hf_strftime_now
    return env


def hf_render(template: str, messages, add_generation_prompt, tools, bos, eos) -> str:
    t = hf_env().from_string(template)
    return t.render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos,
        eos_token=eos,
    )


def make_chat_template(eng: Engine) -> None:
    tmpl = eng.llm.metadata["tokenizer.chat_template"]
    bos, eos = bos_token(eng), eos_token(eng)
    cases = []
    for c in TEMPLATE_CASES:
        rendered = hf_render(tmpl, c["messages"], c["add_generation_prompt"], c["tools"], bos, eos)
        cases.append({**c, "rendered": rendered})
        print(f"  template {c['name']}: {len(rendered)} chars", flush=True)
    write(
        "chat_template.json",
        {
            "provenance": provenance(
                eng,
                {
                    "jinja2_version": pkg_version("jinja2"),
                    "notes": "Rendered with jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, "
                    "lstrip_blocks=True, extensions=[loopcontrols]) plus transformers' tojson filter "
                    "(ensure_ascii=False), raise_exception and strftime_now globals; render kwargs: messages, tools "
                    "(None when absent), documents=None, add_generation_prompt, bos_token, eos_token.",
                },
            ),
            "template_sha256": hashlib.sha256(tmpl.encode()).hexdigest(),
            "template": tmpl,
            "bos_token": bos,
            "eos_token": eos,
            "cases": cases,
        },
    )


def make_tiny(eng: Engine) -> None:
    cases = []
    for name, text in TINY_PROMPTS:
        ids = eng.tokenize(text, special=False)
        logits = eng.eval_prompt(ids)
        rec = {"name": name, "prompt": text, "prompt_ids": ids}
        rec.update(logit_record(logits))
        cases.append(rec)
        print(f"  tiny logits {name}: top1={rec['top'][0]['id']} margin={rec['margin']:.5f}", flush=True)
    greedy = []
    for name, text in TINY_PROMPTS[:2]:
        ids = eng.tokenize(text, special=False)
        gen, margins, top5, top1_logits, stop_id = eng.greedy(ids, 16)
        greedy.append(
            {
                "name": name,
                "prompt": text,
                "prompt_ids": ids,
                "generated_ids": gen,
                "stop_id": stop_id,
                "margins": margins,
                "top1_logits": top1_logits,
                "top5": top5,
            }
        )
        print(f"  tiny greedy {name}: {gen} min_margin={min(margins):.5f}", flush=True)
    meta = eng.llm.metadata
    write(
        "tiny_logits.json",
        {
            "provenance": provenance(
                eng,
                {
                    "model_metadata": {
                        k: meta[k]
                        for k in sorted(meta)
                        if k.startswith("qwen2.") or k in ("general.architecture", "general.file_type")
                    },
                    "notes": "Same conventions as logits.json / greedy.json (plain prompts, add_bos=False, "
                    "special=False); greedy continuation of 16 tokens from plain prompt ids.",
                },
            ),
            "logits": cases,
            "greedy": greedy,
        },
    )


def make_logits_7b_shaped(eng: Engine, shards: list[Path]) -> None:
    cases = []
    for name, text in SHAPED_7B_LOGIT_PROMPTS:
        ids = eng.tokenize(text, special=False)
        logits = eng.eval_prompt(ids)
        rec = {"name": name, "prompt": text, "prompt_ids": ids}
        rec.update(logit_record(logits))
        cases.append(rec)
        print(f"  7b-shaped logits {name}: top1={rec['top'][0]['id']} margin={rec['margin']:.4f}", flush=True)
    name, text, steps = SHAPED_7B_GREEDY
    ids = eng.tokenize(text, special=False)
    gen, margins, top5, top1_logits, stop_id = eng.greedy(ids, steps)
    greedy = {
        "name": name,
        "prompt": text,
        "prompt_ids": ids,
        "generated_ids": gen,
        "stop_id": stop_id,
        "margins": margins,
        "top1_logits": top1_logits,
        "top5": top5,
    }
    print(f"  7b-shaped greedy {name}: {gen} margins={margins}", flush=True)
    write(
        "logits_7b_shaped.json",
        {
            "provenance": provenance(
                eng,
                {
                    "shards": [
                        {"file": p.name, "sha256": MODEL_SHA[p], "size_bytes": p.stat().st_size} for p in shards
                    ],
                    "notes": "The random model shaped like Qwen2.5-7B-Instruct Q4_K_M from "
                    "scripts/make-7b-shaped-model (two gguf-split shards, loaded from the first). Same conventions "
                    "as logits.json (plain prompts, add_bos=False, special=False, last-position logits, ties to "
                    "the lower id); `greedy` is a greedy continuation from plain prompt ids.",
                },
            ),
            "logits": cases,
            "greedy": greedy,
        },
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="subset of: logits greedy chat_completion tokenize chat_template tiny logits_7b_shaped "
        "(the last only when named: it needs the 4.7 GB model of scripts/make-7b-shaped-model)",
    )
    ap.add_argument("--model-7b-shaped", type=Path, default=MODEL_7B_SHAPED, help="its first shard")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--tiny", type=Path, default=TINY)
    args = ap.parse_args()
    want = set(args.only) if args.only else {"logits", "greedy", "chat_completion", "tokenize", "chat_template", "tiny"}
    GOLDEN.mkdir(parents=True, exist_ok=True)
    print(f"llama-cpp-python {llama_cpp.__version__}, jinja2 {pkg_version('jinja2')}, numpy {np.__version__}")
    t0 = time.time()

    main_parts = want & {"logits", "greedy", "chat_completion", "tokenize", "chat_template"}
    if main_parts:
        if not args.model.exists():
            print(f"model not found: {args.model}", file=sys.stderr)
            return 1
        MODEL_SHA[args.model] = sha256_file(args.model)
        eng = Engine(args.model)
        add_bos = eng.llm.metadata.get("tokenizer.ggml.add_bos_token")
        print(f"model {args.model.name} sha256={MODEL_SHA[args.model]} add_bos_token={add_bos}")
        if "tokenize" in want:
            make_tokenize(eng)
        if "chat_template" in want:
            make_chat_template(eng)
        if "logits" in want:
            eng_all = Engine(args.model, logits_all=True)
            make_logits(eng, eng_all)
            del eng_all
        if "greedy" in want:
            make_greedy(eng)
        if "chat_completion" in want:
            make_chat_completion(eng)
        del eng
    if "tiny" in want:
        if not args.tiny.exists():
            print(f"tiny model not found, skipping: {args.tiny}", file=sys.stderr)
        else:
            MODEL_SHA[args.tiny] = sha256_file(args.tiny)
            make_tiny(Engine(args.tiny))
    if "logits_7b_shaped" in want:
        first = args.model_7b_shaped
        shards = sorted(first.parent.glob(first.name.replace("-00001-of-", "-0000?-of-")))
        if not first.exists() or len(shards) != 2:
            print(f"7B-shaped model not found (run scripts/make-7b-shaped-model): {first}", file=sys.stderr)
            return 1
        for p in shards:
            MODEL_SHA[p] = sha256_file(p)
        make_logits_7b_shaped(Engine(first), shards)
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
