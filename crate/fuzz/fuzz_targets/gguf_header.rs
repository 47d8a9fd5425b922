//! Fuzzes the GGUF header parser, as a whole file and as a stream prefix, and everything built on
//! a successful parse (split joining, Qwen2 configuration, inspect JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qwen_webgpu::gguf::{parse_header, GgufModel, HeaderParse, Limits};
use qwen_webgpu::model_config::Qwen2Config;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = parse_header(data, None, &limits);
    if let Ok(HeaderParse::Complete(header)) = parse_header(data, Some(data.len() as u64), &limits)
    {
        assert!(header.data_end() <= data.len() as u64);
        if let Ok(model) = GgufModel::from_shards(vec![*header]) {
            let _ = Qwen2Config::from_model(&model);
            let _ = model.inspect_json(Some(16));
        }
    }
});
