#!/usr/bin/env python3
"""The native CLI's greedy tokens on the 7B-shaped model, as the fixture the browser test checks.

    scripts/7b-shaped-native-greedy.py FIRST_SHARD [OUT]
        (interpreter: scripts/python-env; FIRST_SHARD from scripts/make-7b-shaped-model;
         OUT defaults to tests/fixtures/greedy_7b_shaped_native.json)

Runs `qwen-webgpu generate FIRST_SHARD --prompt Hello --max-tokens 2 --temperature 0 --json`
(through `cargo run`, on the default native GPU: lavapipe here; about a minute) and records its
prompt and generated token ids with each generated token's bytes, read from the model's own
vocabulary (`tokenizer.ggml.tokens`, GPT-2 byte-level spelling). The browser's completions report
a token's bytes, not its id (OpenAI's logprobs), and in this vocabulary distinct ids have distinct
bytes, so equal bytes token by token are equal ids.
"""

import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from gguf import GGUFReader

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Hello"
MAX_TOKENS = 2


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level spelling, inverted: each printable stand-in character → its byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def vocabulary(first_shard: Path) -> list[str]:
    field = GGUFReader(first_shard).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    first_shard = Path(sys.argv[1]).resolve()
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "tests/fixtures/greedy_7b_shaped_native.json"
    args = ["generate", str(first_shard), "--prompt", PROMPT, "--max-tokens", str(MAX_TOKENS), "--temperature", "0", "--context", "512", "--json"]
    run = subprocess.run(
        ["cargo", "run", "--locked", "-q", "-p", "qwen-webgpu", "--bin", "qwen-webgpu", "--", *args],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    done = json.loads(run.stdout.strip().splitlines()[-1])
    if len(done["generated_ids"]) != MAX_TOKENS:
        sys.exit(f"the CLI generated {done['generated_ids']}, not {MAX_TOKENS} tokens")
    vocab = vocabulary(first_shard)
    decode = byte_decoder()
    shards = sorted(first_shard.parent.glob(first_shard.name.replace("00001-of", "*-of")))
    doc = {
        "provenance": {
            "generator": "scripts/7b-shaped-native-greedy.py",
            "command": "qwen-webgpu " + " ".join(args[:1] + [first_shard.name] + args[2:]),
            "adapter": "the native default (lavapipe on the machine that made it)",
            "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "shards": [{"file": s.name, "size_bytes": s.stat().st_size, "sha256": sha256(s)} for s in shards],
        },
        "prompt": PROMPT,
        "prompt_ids": done["prompt_ids"],
        "generated_ids": done["generated_ids"],
        "generated_bytes": [[decode[c] for c in vocab[i]] for i in done["generated_ids"]],
        "text": done["text"],
    }
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(out)


if __name__ == "__main__":
    main()
