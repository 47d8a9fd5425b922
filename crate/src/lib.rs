//! qwen-webgpu: Qwen2-family GGUF models run on WebGPU, in the browser and natively.
//!
//! Data flows one way: GGUF bytes → [`gguf`] header and tensor table → [`model_config`]
//! hyper-parameters → quantized tensors on the GPU ([`gpu`], [`kernels`]) → the forward pass
//! ([`engine`]; or the same steps on the CPU, [`cpu`]) → logits or the argmax token. [`dequant`] is the CPU reference the kernels are tested against.
//! Text ↔ token ids: [`tokenizer`], built from the GGUF's own `tokenizer.ggml.*` metadata.
//! Conversations: [`protocol`] (OpenAI shapes) → [`request`] (their meaning) →
//! [`chat_template`] → prompt ids → the
//! [`generation`] session, which samples ([`sampling`]), constrained by a grammar where asked
//! ([`constraint`]), and streams text.

pub mod cancel;
pub mod chat_template;
pub mod constraint;
pub mod cpu;
pub mod dequant;
pub mod engine;
pub mod gbnf;
pub mod generation;
pub mod gguf;
pub mod gpu;
pub mod kernels;
pub mod logprobs;
pub mod model_config;
pub mod protocol;
pub mod request;
pub mod rope;
pub mod sampling;
pub mod stop;
pub mod tokenizer;
pub mod tools;

#[cfg(target_arch = "wasm32")]
pub mod model_cache;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
mod web_cache;
