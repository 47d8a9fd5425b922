//! WGSL kernels: their sources (composed from `shaders/`), and compiled pipelines, built once.

use std::collections::HashMap;

use crate::gguf::GgmlType;

const BYTES: &str = include_str!("../../../shaders/bytes.wgsl");
const STEP: &str = include_str!("../../../shaders/step.wgsl");
const HEADS: &str = include_str!("../../../shaders/heads.wgsl");
const WORKGROUP_REDUCE: &str = include_str!("../../../shaders/workgroup_reduce.wgsl");
const K_SCALES: &str = include_str!("../../../shaders/dequant/k_scales.wgsl");
const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../../../shaders/reduce_subgroup.wgsl");
const REDUCE_SHARED: &str = include_str!("../../../shaders/reduce_shared.wgsl");
const EMBED: &str = include_str!("../../../shaders/embed.wgsl");
const RMS_NORM: &str = include_str!("../../../shaders/rms_norm.wgsl");
const ROPE_STORE: &str = include_str!("../../../shaders/rope_store.wgsl");
const ATTENTION_SCORES: &str = include_str!("../../../shaders/attention_scores.wgsl");
const ATTENTION_OUTPUT: &str = include_str!("../../../shaders/attention_output.wgsl");
const ARGMAX: &str = include_str!("../../../shaders/argmax.wgsl");

/// Browsers require WGSL's `enable subgroups;`; naga (native wgpu) rejects it and takes the
/// device feature alone.
const SUBGROUPS_DIRECTIVE: &str = if cfg!(target_arch = "wasm32") {
    "enable subgroups;\n"
} else {
    ""
};

/// Tokens per mat-mul tile in prefill: each dequantized weight chunk is used this many times.
pub const PREFILL_TILE: u32 = 8;

/// Rows one mat-mul workgroup computes.
pub const MATMUL_ROWS_PER_WORKGROUP: u32 = 8;

/// The weight types the GPU kernels read, and their `dequant4` sources.
fn dequant_source(ty: GgmlType) -> Option<String> {
    let body = match ty {
        GgmlType::F32 => include_str!("../../../shaders/dequant/f32.wgsl"),
        GgmlType::F16 => include_str!("../../../shaders/dequant/f16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../../shaders/dequant/q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../../shaders/dequant/q4_1.wgsl"),
        GgmlType::Q5_0 => include_str!("../../../shaders/dequant/q5_0.wgsl"),
        GgmlType::Q5_1 => include_str!("../../../shaders/dequant/q5_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../../shaders/dequant/q8_0.wgsl"),
        GgmlType::Q4K => {
            return Some(format!(
                "{BYTES}\n{K_SCALES}\n{}",
                include_str!("../../../shaders/dequant/q4_k.wgsl")
            ))
        }
        GgmlType::Q5K => {
            return Some(format!(
                "{BYTES}\n{K_SCALES}\n{}",
                include_str!("../../../shaders/dequant/q5_k.wgsl")
            ))
        }
        GgmlType::Q6K => include_str!("../../../shaders/dequant/q6_k.wgsl"),
        _ => return None,
    };
    Some(format!("{BYTES}\n{body}"))
}

/// Whether weights of `ty` can be used by the GPU kernels.
pub fn gpu_supports(ty: GgmlType) -> bool {
    dequant_source(ty).is_some()
}

/// One compute kernel, with the variant parameters that change its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Y (+)= W X for weights of a type, `tile` tokens per workgroup, reducing with subgroup
    /// shuffles or through workgroup memory.
    MatMul {
        ty: GgmlType,
        tile: u32,
        subgroups: bool,
    },
    /// Embedding rows of a type, looked up by token id.
    Embed {
        ty: GgmlType,
    },
    RmsNorm,
    /// RoPE and the KV cache store; the cache holds f16 (`f16_cache`) or f32.
    RopeStore {
        f16_cache: bool,
    },
    AttentionScores {
        f16_cache: bool,
    },
    AttentionOutput {
        f16_cache: bool,
    },
    Argmax,
}

/// How a kernel binds a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Read,
    ReadWrite,
    Uniform,
}

impl Kernel {
    /// The kernel's bindings in order (group 0), matching the `@binding` declarations.
    fn slots(self) -> &'static [Slot] {
        use Slot::*;
        match self {
            Kernel::MatMul { .. } => &[Read, Read, ReadWrite, Read, Uniform, Uniform],
            Kernel::Embed { .. } => &[Read, Read, ReadWrite, Uniform, Uniform],
            Kernel::RmsNorm => &[Read, Read, ReadWrite, Uniform, Uniform],
            Kernel::RopeStore { .. } => &[
                ReadWrite, Read, Read, ReadWrite, ReadWrite, Read, Uniform, Uniform,
            ],
            Kernel::AttentionScores { .. } => &[Read, Read, ReadWrite, Uniform, Uniform],
            Kernel::AttentionOutput { .. } => &[Read, Read, ReadWrite, Uniform, Uniform],
            Kernel::Argmax => &[Read, ReadWrite, Uniform],
        }
    }

    /// The complete WGSL module, or `None` for a weight type the kernels cannot read.
    pub fn source(self) -> Option<String> {
        // Enable directives must come first; shared declarations follow, then the kernel.
        let (enable, shared, body) = match self {
            Kernel::MatMul {
                ty,
                tile,
                subgroups,
            } => {
                let (enable, reduce) = if subgroups {
                    (SUBGROUPS_DIRECTIVE, REDUCE_SUBGROUP)
                } else {
                    ("", REDUCE_SHARED)
                };
                let shared = format!("{}\n{reduce}\n{STEP}", dequant_source(ty)?);
                (
                    enable,
                    shared,
                    MATMUL.replace("{{TILE}}", &tile.to_string()),
                )
            }
            Kernel::Embed { ty } => ("", format!("{}\n{STEP}", dequant_source(ty)?), EMBED.into()),
            Kernel::RmsNorm => ("", format!("{STEP}\n{WORKGROUP_REDUCE}"), RMS_NORM.into()),
            Kernel::RopeStore { f16_cache } => kv_kernel(f16_cache, ROPE_STORE),
            Kernel::AttentionScores { f16_cache } => kv_kernel(f16_cache, ATTENTION_SCORES),
            Kernel::AttentionOutput { f16_cache } => {
                let (enable, shared, body) = kv_kernel(f16_cache, ATTENTION_OUTPUT);
                (enable, format!("{shared}\n{WORKGROUP_REDUCE}"), body)
            }
            Kernel::Argmax => ("", String::new(), ARGMAX.into()),
        };
        Some(format!("{enable}{shared}\n{body}"))
    }
}

/// An attention kernel over a KV cache of element type `kv`: f16 or f32.
fn kv_kernel(f16_cache: bool, body: &str) -> (&'static str, String, String) {
    let (enable, kv) = if f16_cache {
        ("enable f16;\n", "f16")
    } else {
        ("", "f32")
    };
    (
        enable,
        format!("alias kv = {kv};\n{STEP}\n{HEADS}"),
        body.into(),
    )
}

/// Compiled pipelines and their bind group layouts, created at model load and reused for every
/// step. Layouts are explicit and shared by kernels with the same bindings, so one bind group
/// serves every variant of a kernel (decode and prefill tiles of a mat-mul).
#[derive(Default)]
pub struct Kernels {
    layouts: HashMap<&'static [Slot], wgpu::BindGroupLayout>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
}

impl Kernels {
    fn layout(&mut self, device: &wgpu::Device, slots: &'static [Slot]) -> &wgpu::BindGroupLayout {
        self.layouts.entry(slots).or_insert_with(|| {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
                .iter()
                .enumerate()
                .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: match slot {
                        Slot::Uniform => wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        Slot::Read | Slot::ReadWrite => wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage {
                                read_only: *slot == Slot::Read,
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                    },
                    count: None,
                })
                .collect();
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            })
        })
    }

    /// Compiles `kernel` unless it already is. `false` for a weight type the kernels cannot
    /// read.
    pub fn prepare(&mut self, device: &wgpu::Device, kernel: Kernel) -> bool {
        if self.pipelines.contains_key(&kernel) {
            return true;
        }
        let Some(source) = kernel.source() else {
            return false;
        };
        let label = format!("{kernel:?}");
        let layout = self.layout(device, kernel.slots());
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.insert(kernel, pipeline);
        true
    }

    /// A prepared kernel's pipeline.
    pub fn pipeline(&self, kernel: Kernel) -> Option<&wgpu::ComputePipeline> {
        self.pipelines.get(&kernel)
    }

    /// A bind group for `kernel` over `buffers`, in binding order.
    pub fn bind_group(
        &mut self,
        device: &wgpu::Device,
        kernel: Kernel,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        debug_assert_eq!(buffers.len(), kernel.slots().len(), "{kernel:?}");
        let layout = self.layout(device, kernel.slots());
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{kernel:?}")),
            layout,
            entries: &entries,
        })
    }
}
