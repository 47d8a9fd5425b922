//! Browser platform edge: the functions JavaScript calls through wasm-bindgen.

use wasm_bindgen::prelude::*;

use crate::gguf::{parse_header, GgufModel, HeaderParse, Limits};

/// Parses a GGUF header from the first bytes of a file of `file_len` bytes (or unknown length).
///
/// Returns the `inspect` JSON document (arrays longer than 16 elements summarised) once the
/// prefix holds the whole header, or `{"need_bytes": N}` when at least N bytes are needed.
#[wasm_bindgen(js_name = inspectGgufHeader)]
pub fn inspect_gguf_header(prefix: &[u8], file_len: Option<f64>) -> Result<String, JsError> {
    let file_len = file_len.map(|n| n as u64);
    match parse_header(prefix, file_len, &Limits::default())? {
        HeaderParse::NeedBytes(n) => Ok(serde_json::json!({ "need_bytes": n }).to_string()),
        HeaderParse::Complete(header) => {
            let model = GgufModel::from_shards(vec![*header])?;
            Ok(model.inspect_json(Some(16)).to_string())
        }
    }
}
