//! qwen-webgpu: Qwen2-family GGUF models run on WebGPU, in the browser and natively.
//!
//! Data flows one way: GGUF bytes → [`gguf`] header and tensor table → [`model_config`]
//! hyper-parameters → tensors (dequantized on the CPU by [`dequant`] for reference and tests).

pub mod dequant;
pub mod gguf;
pub mod model_config;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod web;
