//! `tokenize` (a text's token ids) and `tokenizer-bench` (encoding throughput on a file).

use std::path::Path;
use std::time::Instant;

use qwen_webgpu::native::open_model;
use qwen_webgpu::tokenizer::Tokenizer;
use serde_json::json;

use crate::output::write_stdout;

/// The tokenizer of the model at `path`.
fn load_tokenizer(path: &Path) -> Result<Tokenizer, String> {
    let (model, _) = open_model(path).map_err(|e| e.to_string())?;
    Tokenizer::from_model(&model).map_err(|e| e.to_string())
}

pub fn tokenize(path: &Path, text: &str, special: bool, json: bool) -> Result<(), String> {
    let tokenizer = load_tokenizer(path)?;
    let ids = tokenizer.encode(text, special).map_err(|e| e.to_string())?;
    let out = if json {
        json!({ "ids": ids }).to_string()
    } else {
        ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    };
    write_stdout(&(out + "\n"))
}

pub fn tokenizer_bench(
    path: &Path,
    text: &Path,
    repeat: usize,
    save_hf_json: Option<&Path>,
) -> Result<(), String> {
    let tokenizer = load_tokenizer(path)?;
    if let Some(out) = save_hf_json {
        let json = tokenizer.to_hf_json().map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let text = std::fs::read_to_string(text).map_err(|e| format!("{}: {e}", text.display()))?;
    let mut best = f64::INFINITY;
    let mut tokens = 0;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        tokens = tokenizer
            .encode(&text, false)
            .map_err(|e| e.to_string())?
            .len();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let doc = json!({
        "implementation": "qwen-webgpu (tokenizers crate, fancy-regex)",
        "bytes": text.len(),
        "tokens": tokens,
        "best_s": best,
        "mb_per_s": text.len() as f64 / 1e6 / best.max(1e-9),
    });
    write_stdout(&(doc.to_string() + "\n"))
}
