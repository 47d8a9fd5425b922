//! `inspect`: a GGUF model's metadata and tensor table, as a text report or one JSON document.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qwen_webgpu::gguf::{GgufModel, MetadataValue};
use qwen_webgpu::model_config::Qwen2Config;
use qwen_webgpu::native::open_model;

use crate::output::write_stdout;

/// Arrays longer than this are summarised rather than printed whole.
const MAX_ARRAY: usize = 16;

pub fn inspect(path: &Path, json: bool) -> Result<(), String> {
    let (model, paths) = open_model(path).map_err(|e| e.to_string())?;
    let mut out = if json {
        let doc = model.inspect_json(Some(MAX_ARRAY));
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    } else {
        text_report(&model, &paths)
    };
    out.push('\n');
    write_stdout(&out)
}

fn text_report(model: &GgufModel, paths: &[PathBuf]) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut s, model, paths);
    s
}

fn write_report(s: &mut String, model: &GgufModel, paths: &[PathBuf]) -> std::fmt::Result {
    for (path, shard) in paths.iter().zip(model.shards()) {
        writeln!(
            s,
            "{}: GGUF v{}, {} tensors, data at bytes {}..{}",
            path.display(),
            shard.version,
            shard.tensors.len(),
            shard.data_offset,
            shard.data_end()
        )?;
    }
    writeln!(s, "\nmetadata ({} keys):", model.metadata().len())?;
    for (key, value) in model.metadata().iter() {
        writeln!(s, "  {key:<44} {}", describe(value))?;
    }
    match Qwen2Config::from_model(model) {
        Ok(config) => writeln!(s, "\nqwen2 configuration: {config:?}")?,
        Err(e) => writeln!(s, "\nnot usable as qwen2: {e}")?,
    }
    writeln!(s, "\ntensors ({}):", model.tensors().len())?;
    for t in model.tensors() {
        let shape: Vec<String> = t.info.shape.iter().map(u64::to_string).collect();
        writeln!(
            s,
            "  {:<32} {:<6} {:<18} offset {:>11} bytes {:>10}",
            t.info.name,
            t.info.ggml_type.name(),
            shape.join(" x "),
            t.file_offset,
            t.info.bytes
        )?;
    }
    Ok(())
}

/// One line for a metadata value: long strings and arrays are cut to their start.
fn describe(value: &MetadataValue) -> String {
    const MAX_CHARS: usize = 80;
    let text = match value {
        MetadataValue::String(s) => format!("{s:?}"),
        other => other.to_json(Some(MAX_ARRAY)).to_string(),
    };
    let mut line: String = text.chars().take(MAX_CHARS).collect();
    if line.len() < text.len() {
        line.push('…');
    }
    format!("{:<6} {line}", value.type_name())
}
