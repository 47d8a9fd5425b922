//! `bench`: prefill and decode speed and what each decoded token costs (bytes, dispatches).

use std::path::Path;
use std::time::Instant;

use qwen_webgpu::engine::{Engine, Readback, StepOutput};
use serde_json::json;

use crate::args::EngineArgs;
use crate::output::write_stdout;

pub fn bench(
    model: &Path,
    prompt_tokens: usize,
    gen_tokens: usize,
    args: &EngineArgs,
    json: bool,
) -> Result<(), String> {
    let load_start = Instant::now();
    let mut engine = args.load(model)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let vocab = engine.config().vocab_size as u32;
    // A fixed, varied prompt: the timing does not depend on which tokens they are.
    let prompt: Vec<u32> = (0..prompt_tokens as u32)
        .map(|i| (i * 7919 + 13) % vocab.min(150_000))
        .collect();
    let run = |engine: &mut Engine, tokens: &[u32]| -> Result<u32, String> {
        match pollster::block_on(engine.step(tokens, Readback::Argmax)) {
            Ok(StepOutput::Argmax { token, .. }) => Ok(token),
            Ok(other) => Err(format!("unexpected step output {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    };
    let prefill_start = Instant::now();
    let mut token = run(&mut engine, &prompt)?;
    let prefill_s = prefill_start.elapsed().as_secs_f64();
    let prefill_stats = engine.last_step_stats().clone();
    let decode_start = Instant::now();
    for _ in 0..gen_tokens {
        token = run(&mut engine, &[token])?;
    }
    let decode_s = decode_start.elapsed().as_secs_f64();
    let decode = engine.last_step_stats().clone();
    let decode_tps = gen_tokens as f64 / decode_s.max(1e-9);
    let doc = json!({
        "adapter": match engine.gpu() {
            Some(gpu) => gpu.adapter_description(),
            None => format!("cpu, {} threads", args.threads()),
        },
        "model": model.display().to_string(),
        "load_s": load_s,
        "prompt_tokens": prompt_tokens,
        "gen_tokens": gen_tokens,
        "prefill_tokens_per_s": prompt_tokens as f64 / prefill_s.max(1e-9),
        "prefill_submits": prefill_stats.submits,
        "decode_tokens_per_s": decode_tps,
        "weight_bytes_per_token": decode.weight_bytes_read,
        "achieved_gb_per_s": decode.weight_bytes_read as f64 * decode_tps / 1e9,
        "dispatches_per_token": decode.dispatches,
        "dispatches_per_layer": match &engine {
            Engine::Gpu(gpu) => Some(gpu.dispatches_per_layer()),
            Engine::Cpu(_) => None,
        },
        "submits_per_token": decode.submits,
        "bytes_read_back_per_token": decode.bytes_read_back,
    });
    let out = if json {
        doc.to_string()
    } else {
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    };
    write_stdout(&(out + "\n"))
}
