//! `bench`: prefill and decode speed and what each decoded token costs (bytes, dispatches), and
//! with `--context-sweep`, decode speed at each filled context length.

use std::path::Path;
use std::time::Instant;

use qwen_webgpu::engine::{Engine, Readback, StepOutput};
use serde_json::{json, Value};

use crate::args::EngineArgs;
use crate::output::write_stdout;

/// What to measure.
pub struct BenchPlan {
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// Context lengths to fill (ascending) and decode `gen_tokens` at, after the main run.
    pub context_sweep: Vec<usize>,
}

/// A fixed, varied token sequence: the timing does not depend on which tokens they are.
fn filler(engine: &Engine, from: usize, len: usize) -> Vec<u32> {
    let vocab = engine.config().vocab_size as u32;
    (from as u32..(from + len) as u32)
        .map(|i| (i * 7919 + 13) % vocab.min(150_000))
        .collect()
}

fn run(engine: &mut Engine, tokens: &[u32]) -> Result<u32, String> {
    match pollster::block_on(engine.step(tokens, Readback::Argmax)) {
        Ok(StepOutput::Argmax { token, .. }) => Ok(token),
        Ok(other) => Err(format!("unexpected step output {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Decodes `n` tokens after `token`; returns tokens per second.
fn decode(engine: &mut Engine, mut token: u32, n: usize) -> Result<f64, String> {
    let start = Instant::now();
    for _ in 0..n {
        token = run(engine, &[token])?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Fills the context up to each length of the sweep (prefilling only the new tokens), decodes
/// there, and drops the decoded tokens again.
fn context_sweep(engine: &mut Engine, plan: &BenchPlan) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    for &context in &plan.context_sweep {
        let needed = context + plan.gen_tokens;
        if needed > engine.capacity() {
            return Err(format!(
                "the context holds {} tokens: --context-sweep {context} with --gen-tokens {} \
                 needs --context {needed} or more",
                engine.capacity(),
                plan.gen_tokens
            ));
        }
        let filled = engine.position();
        if context <= filled {
            return Err(format!(
                "--context-sweep lengths must ascend past the prompt ({filled} tokens): {context}"
            ));
        }
        let start = Instant::now();
        let token = run(engine, &filler(engine, filled, context - filled))?;
        let prefill_s = start.elapsed().as_secs_f64();
        let decode_tps = decode(engine, token, plan.gen_tokens)?;
        engine.truncate(context);
        rows.push(json!({
            "context": context,
            "prefill_tokens": context - filled,
            "prefill_tokens_per_s": (context - filled) as f64 / prefill_s.max(1e-9),
            "decode_tokens_per_s": decode_tps,
        }));
    }
    Ok(rows)
}

pub fn bench(model: &Path, plan: &BenchPlan, args: &EngineArgs, json: bool) -> Result<(), String> {
    let load_start = Instant::now();
    let mut engine = args.load(model)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let prompt = filler(&engine, 0, plan.prompt_tokens);
    let prefill_start = Instant::now();
    let token = run(&mut engine, &prompt)?;
    let prefill_s = prefill_start.elapsed().as_secs_f64();
    let prefill_stats = engine.last_step_stats().clone();
    let decode_tps = decode(&mut engine, token, plan.gen_tokens)?;
    let decode = engine.last_step_stats().clone();
    engine.truncate(plan.prompt_tokens);
    let sweep = context_sweep(&mut engine, plan)?;
    let mut doc = json!({
        "adapter": engine.gpu().adapter_description(),
        "model": model.display().to_string(),
        "load_s": load_s,
        "context": engine.capacity(),
        "prefill_chunk": engine.prefill_chunk(),
        "prompt_tokens": plan.prompt_tokens,
        "gen_tokens": plan.gen_tokens,
        "prefill_tokens_per_s": plan.prompt_tokens as f64 / prefill_s.max(1e-9),
        "prefill_submits": prefill_stats.submits,
        "decode_tokens_per_s": decode_tps,
        "weight_bytes_per_token": decode.weight_bytes_read,
        "achieved_gb_per_s": decode.weight_bytes_read as f64 * decode_tps / 1e9,
        "dispatches_per_token": decode.dispatches,
        "dispatches_per_layer": engine.dispatches_per_layer(),
        "submits_per_token": decode.submits,
        "bytes_read_back_per_token": decode.bytes_read_back,
    });
    if !sweep.is_empty() {
        doc["context_sweep"] = Value::Array(sweep);
    }
    let out = if json {
        doc.to_string()
    } else {
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    };
    write_stdout(&(out + "\n"))
}
