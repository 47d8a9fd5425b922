//! `logits`: one forward pass over a prompt and the highest next-token logits.

use qwen_webgpu::engine::{Readback, StepOutput};
use qwen_webgpu::native::open_model;
use qwen_webgpu::tokenizer::Tokenizer;
use serde_json::json;

use crate::args::RunArgs;
use crate::output::write_stdout;

pub fn logits(run: &RunArgs, top: usize, json: bool) -> Result<(), String> {
    let (model, _) = open_model(&run.model).map_err(|e| e.to_string())?;
    let prompt_ids = run.prompt_ids(|text| {
        Tokenizer::from_model(&model)
            .and_then(|t| t.encode(text, false))
            .map_err(|e| e.to_string())
    })?;
    let mut engine = run.engine.load(&run.model)?;
    let logits = match pollster::block_on(engine.step(&prompt_ids, Readback::Logits)) {
        Ok(StepOutput::Logits(l)) => l,
        Ok(other) => return Err(format!("unexpected step output {other:?}")),
        Err(e) => return Err(e.to_string()),
    };
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let top: Vec<serde_json::Value> = order
        .iter()
        .take(top)
        .map(|&i| json!({"id": i, "logit": logits[i]}))
        .collect();
    let out = if json {
        json!({"prompt_ids": prompt_ids, "top": top}).to_string()
    } else {
        top.iter()
            .map(|t| {
                format!(
                    "{:>8} {:>10.4}",
                    t["id"],
                    t["logit"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    write_stdout(&(out + "\n"))
}
