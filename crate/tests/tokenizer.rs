//! The tokenizer built from the real test model's metadata, against llama.cpp: its own Qwen2
//! vocabulary test vectors (/work/shared/peer-tests) and the golden tokenize fixture.

mod support;

use std::sync::OnceLock;

use qwen_webgpu::native::open_model;
use qwen_webgpu::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};
use serde_json::Value;

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let (model, _) = open_model(&support::real_model()).unwrap();
        Tokenizer::from_model(&model).unwrap()
    })
}

fn peer_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("/work/shared/peer-tests/llama.cpp-vocab-qwen2")
}

#[test]
fn llama_cpp_qwen2_vocab_vectors() {
    let dir = peer_dir();
    let inp = std::fs::read_to_string(dir.join("ggml-vocab-qwen2.gguf.inp")).unwrap();
    let out = std::fs::read_to_string(dir.join("ggml-vocab-qwen2.gguf.out")).unwrap();
    let mut texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    assert_eq!(texts.pop(), Some(""), "the .inp ends with a marker");
    let expected: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(texts.len(), 43);
    assert_eq!(expected.len(), texts.len());
    let tok = tokenizer();
    let mut failures = Vec::new();
    for (text, want) in texts.iter().zip(&expected) {
        let got = tok.encode(text, false).unwrap();
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, llama.cpp {want:?}"));
        }
        assert_eq!(tok.decode(&got).unwrap(), *text);
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        texts.len(),
        failures.join("\n")
    );
}

fn golden_cases() -> Vec<Value> {
    let path = support::repo_root().join("tests/fixtures/golden/tokenize.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn golden_tokenize_fixture() {
    let tok = tokenizer();
    let cases = golden_cases();
    assert_eq!(cases.len(), 57);
    let mut failures = Vec::new();
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let plain = tok.encode(text, false).unwrap();
        let special = tok.encode(text, true).unwrap();
        if plain != ids(&case["ids"]) {
            failures.push(format!("special=false {text:?}: got {plain:?}"));
        }
        if special != ids(&case["ids_special"]) {
            failures.push(format!("special=true {text:?}: got {special:?}"));
        }
        assert_eq!(tok.decode(&plain).unwrap(), text);
        // Control tokens decode as their text, so the special ids round-trip too.
        assert_eq!(tok.decode(&special).unwrap(), text);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn token_lookup_and_control_tokens() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 151_936);
    assert_eq!(tok.token_id("<|endoftext|>"), Some(151_643));
    assert_eq!(tok.token_id("<|im_start|>"), Some(151_644));
    assert_eq!(tok.token_id("<|im_end|>"), Some(151_645));
    assert_eq!(tok.token_id("<tool_call>"), Some(151_657));
    assert_eq!(tok.token_id("no such token"), None);
    assert_eq!(tok.encode("<|im_end|>", true).unwrap(), vec![151_645]);
    assert_ne!(tok.encode("<|im_end|>", false).unwrap(), vec![151_645]);
    // User-defined tokens are matched whether or not special tokens are allowed.
    assert_eq!(tok.encode("<tool_call>", false).unwrap(), vec![151_657]);
    assert_eq!(tok.decode(&[151_645]).unwrap(), "<|im_end|>");
    assert!(matches!(
        tok.decode(&[151_936]),
        Err(TokenizerError::UnknownId { id: 151_936, .. })
    ));
}

/// Feeds ids one by one; returns each push's result.
fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<Option<String>> {
    let mut dec = StreamDecoder::new();
    let out = ids.iter().map(|&id| dec.push(tok, id).unwrap()).collect();
    assert_eq!(dec.finish(), None, "nothing left over after whole text");
    out
}

#[test]
fn stream_decoder_emits_whole_characters() {
    let tok = tokenizer();
    let mut held = 0;
    for case in golden_cases() {
        let text = case["text"].as_str().unwrap();
        let ids = ids(&case["ids"]);
        let deltas = stream(tok, &ids);
        held += deltas.iter().filter(|d| d.is_none()).count();
        let joined: String = deltas.iter().flatten().map(String::as_str).collect();
        assert_eq!(joined, text);
        // No delta holds a replacement character: no character was cut in two.
        assert!(deltas.iter().flatten().all(|d| !d.contains('\u{FFFD}')));
    }
    assert!(held > 0, "some token in the fixture ends mid-character");

    // A real case: in "ZWJ family: 👨‍👩‍👧‍👦 …" llama.cpp's ids split 👨 (4 bytes) over two
    // tokens (" \xF0\x9F\x91", "\xA8"); it comes out once, whole, with the token that
    // completes it.
    let case = golden_cases()
        .into_iter()
        .find(|c| c["text"].as_str().unwrap().starts_with("ZWJ family: "))
        .unwrap();
    let ids = ids(&case["ids"]);
    let man = "👨".as_bytes();
    let start = (0..ids.len())
        .find(|&i| {
            let b = tok.token_bytes(ids[i]).unwrap();
            (1..man.len()).any(|n| b.ends_with(&man[..n]))
        })
        .expect("a token ending in the first bytes of 👨");
    let mut dec = StreamDecoder::new();
    let before: String = ids[..start]
        .iter()
        .filter_map(|&id| dec.push(tok, id).unwrap())
        .collect();
    assert_eq!(before, "ZWJ family:");
    // The token with the first bytes gives at most the space; 👨 waits for its last byte.
    let first = dec.push(tok, ids[start]).unwrap();
    assert!(
        first.is_none() || first.as_deref() == Some(" "),
        "{first:?}"
    );
    let mut rest = String::new();
    for &id in &ids[start + 1..] {
        if let Some(d) = dec.push(tok, id).unwrap() {
            rest = d;
            break;
        }
    }
    assert!(rest.starts_with('👨'), "{rest:?}");
}

#[test]
fn stream_decoder_cjk_and_emoji_text() {
    let tok = tokenizer();
    for text in ["你好，世界！", "😀😃😄 👍🏽 🇫🇷", "日本語のテキスト 👩‍💻 done"]
    {
        let ids = tok.encode(text, false).unwrap();
        let deltas = stream(tok, &ids);
        let joined: String = deltas.iter().flatten().map(String::as_str).collect();
        assert_eq!(joined, text);
    }
    // A byte sequence that can never be UTF-8 (a lone continuation byte) is not held forever.
    let lone = (0..tok.vocab_size() as u32)
        .find(|&id| tok.token_bytes(id).unwrap() == [0x80])
        .unwrap();
    let mut dec = StreamDecoder::new();
    assert_eq!(dec.push(tok, lone).unwrap().as_deref(), Some("\u{FFFD}"));
    assert_eq!(dec.finish(), None);
}

#[test]
fn cli_tokenize() {
    let exe = env!("CARGO_BIN_EXE_qwen-webgpu");
    let model = support::real_model();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(exe)
            .arg("tokenize")
            .arg(&model)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", out);
        String::from_utf8(out.stdout).unwrap()
    };
    let doc: Value = serde_json::from_str(&run(&["Hello, world!", "--json"])).unwrap();
    assert_eq!(doc, serde_json::json!({"ids": [9707, 11, 1879, 0]}));
    assert_eq!(run(&["<|im_end|>x", "--special"]), "151645 87\n");
}
