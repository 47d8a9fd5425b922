//! What a compute kernel is to the host: its named bindings (one declaration, bound by name
//! through a typed struct), its uniform structs (declared once in Rust, their WGSL twins
//! generated), its WGSL module composed from snippets, its grid, and the pipeline cache.
//!
//! A kernel lives in one file of [`crate::kernels`]: a type implementing [`Kernel`] (the
//! variant parameters that change its source), a [`kernel_bindings!`] struct, its
//! [`wgsl_uniform!`] parameter struct and the grid maths of its dispatches.

use std::collections::HashMap;
use std::fmt::Debug;

/// A piece of WGSL shared between kernels (byte loads, dequantization, reductions). It names
/// the snippets it calls and the globals of its host kernel it reads, so that contract is
/// written down and checked (a test reflects every kernel and finds each such global bound).
#[derive(Debug)]
pub struct Snippet {
    pub name: &'static str,
    pub source: &'static str,
    /// Snippets whose functions this one calls.
    pub needs: &'static [&'static Snippet],
    /// Globals of the host kernel this snippet reads (`W`, the weights; `X`, the activations).
    pub reads_globals: &'static [&'static str],
}

/// How a kernel accesses one binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `var<uniform>`
    Uniform,
}

/// One binding of group 0: the WGSL global's name and its access. Its index is its position in
/// the kernel's [`BindingSet::LAYOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    pub name: &'static str,
    pub access: Access,
}

/// The buffers of one dispatch, as a struct with one named field per binding
/// (see [`kernel_bindings!`]).
pub trait BindingSet<'a> {
    /// The kernel's bindings in `@binding` order.
    const LAYOUT: &'static [Binding];
    /// The buffers in [`Self::LAYOUT`] order.
    fn buffers(&self) -> Vec<&'a wgpu::Buffer>;
}

/// Declares a kernel's bindings once: a struct whose fields are the buffers, in `@binding`
/// order, each with the WGSL global it binds and its access. Call sites fill the fields by
/// name; a test checks the list against the WGSL through naga's reflection.
#[macro_export]
macro_rules! kernel_bindings {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* $field:ident => $global:ident: $access:ident,)*
    }) => {
        $(#[$meta])*
        pub struct $name<'a> {
            $($(#[$fmeta])* pub $field: &'a wgpu::Buffer,)*
        }

        impl<'a> $crate::gpu::BindingSet<'a> for $name<'a> {
            const LAYOUT: &'static [$crate::gpu::Binding] = &[$($crate::gpu::Binding {
                name: stringify!($global),
                access: $crate::gpu::Access::$access,
            },)*];

            fn buffers(&self) -> Vec<&'a wgpu::Buffer> {
                vec![$(self.$field,)*]
            }
        }
    };
}

/// A uniform struct shared with WGSL: a `#[repr(C)]` struct of 4-byte scalars whose WGSL
/// declaration is generated from the same field list (see [`wgsl_uniform!`]).
pub trait UniformStruct: bytemuck::Pod {
    /// The WGSL struct's name.
    const WGSL_NAME: &'static str;
    /// (field, WGSL scalar type), in declaration order; each is 4 bytes, so field `i` sits at
    /// byte `4 i` on both sides.
    const FIELDS: &'static [(&'static str, &'static str)];

    /// The WGSL declaration.
    fn wgsl() -> String {
        let mut s = format!("struct {} {{\n", Self::WGSL_NAME);
        for (field, ty) in Self::FIELDS {
            s.push_str(&format!("    {field}: {ty},\n"));
        }
        s.push_str("}\n");
        s
    }
}

/// Declares a uniform struct once, for Rust and WGSL. Fields are `u32` or `f32`; the size must
/// be a multiple of 16 bytes (uniform buffer layout), checked at compile time.
#[macro_export]
macro_rules! wgsl_uniform {
    ($(#[$meta:meta])* pub struct $name:ident as $wgsl:literal {
        $($(#[$fmeta:meta])* $field:ident: $ty:ident,)*
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::gpu::UniformStruct for $name {
            const WGSL_NAME: &'static str = $wgsl;
            const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), stringify!($ty)),)*];
        }

        const _: () = assert!(
            std::mem::size_of::<$name>() % 16 == 0
                && std::mem::size_of::<$name>() == 4 * <$name as $crate::gpu::UniformStruct>::FIELDS.len()
        );
    };
}

/// A compute kernel: a value whose fields are the variant parameters that change its WGSL
/// (weight type, tile, subgroups, KV element type). Its `Debug` form names the pipeline.
pub trait Kernel: Debug + Copy {
    type Bindings<'a>: BindingSet<'a>;

    /// The WGSL module of this variant; `None` for a variant the kernel cannot provide (a
    /// weight type it cannot read).
    fn module(&self) -> Option<Module>;
}

/// A kernel's WGSL, composed explicitly: enable directives, constants, generated uniform
/// structs, snippets (each after its dependencies, once) and the kernel body.
#[derive(Debug, Clone, Default)]
pub struct Module {
    enables: Vec<&'static str>,
    aliases: Vec<(&'static str, &'static str)>,
    constants: Vec<(&'static str, u32)>,
    structs: Vec<String>,
    snippets: Vec<&'static Snippet>,
    body: &'static str,
}

impl Module {
    pub fn new(body: &'static str) -> Module {
        Module {
            body,
            ..Module::default()
        }
    }

    /// `enable NAME;` (f16, subgroups).
    pub fn enable(mut self, extension: &'static str) -> Module {
        if !self.enables.contains(&extension) {
            self.enables.push(extension);
        }
        self
    }

    /// `alias NAME = TYPE;` (the KV cache's element type).
    pub fn alias(mut self, name: &'static str, ty: &'static str) -> Module {
        self.aliases.push((name, ty));
        self
    }

    /// `const NAME: u32 = VALUE;`
    pub fn constant(mut self, name: &'static str, value: u32) -> Module {
        self.constants.push((name, value));
        self
    }

    /// The WGSL declaration of a uniform struct.
    pub fn uniform<U: UniformStruct>(mut self) -> Module {
        self.structs.push(U::wgsl());
        self
    }

    /// A snippet (and, through it, its dependencies).
    pub fn snippet(mut self, snippet: &'static Snippet) -> Module {
        self.snippets.push(snippet);
        self
    }

    /// Every snippet included, each after its dependencies.
    pub fn snippets(&self) -> Vec<&'static Snippet> {
        let mut out: Vec<&'static Snippet> = Vec::new();
        fn visit(s: &'static Snippet, out: &mut Vec<&'static Snippet>) {
            if out.iter().any(|o| std::ptr::eq(*o, s)) {
                return;
            }
            for dep in s.needs {
                visit(dep, out);
            }
            out.push(s);
        }
        for s in &self.snippets {
            visit(s, &mut out);
        }
        out
    }

    /// The complete WGSL source.
    pub fn source(&self) -> String {
        let mut s = String::new();
        for e in &self.enables {
            // Browsers require `enable subgroups;`; naga (native wgpu) rejects it and takes the
            // device feature alone.
            if *e == "subgroups" && !cfg!(target_arch = "wasm32") {
                continue;
            }
            s.push_str(&format!("enable {e};\n"));
        }
        for (name, ty) in &self.aliases {
            s.push_str(&format!("alias {name} = {ty};\n"));
        }
        for (name, value) in &self.constants {
            s.push_str(&format!("const {name}: u32 = {value}u;\n"));
        }
        for st in &self.structs {
            s.push_str(st);
        }
        for snippet in self.snippets() {
            s.push_str(snippet.source);
            s.push('\n');
        }
        s.push_str(self.body);
        s
    }
}

/// How many workgroups one axis of a dispatch launches, given the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    Fixed(u32),
    /// The step's token count.
    Tokens,
    /// The step's tokens in tiles of this many.
    TokenTiles(u32),
    /// `per_token` rows for each of the step's tokens, `per_workgroup` rows to a workgroup.
    TokenRows {
        per_token: u32,
        per_workgroup: u32,
    },
    /// The cached positions cut into splits of at least `min_len`, at most `most_decode` of
    /// them for a one-token step and `most_prefill` otherwise.
    PositionSplits {
        min_len: u32,
        most_decode: u32,
        most_prefill: u32,
    },
}

impl Extent {
    fn size(self, n_tokens: u32, seq_len: u32) -> u32 {
        match self {
            Extent::Fixed(n) => n,
            Extent::Tokens => n_tokens,
            Extent::TokenTiles(tile) => n_tokens.div_ceil(tile.max(1)),
            Extent::TokenRows {
                per_token,
                per_workgroup,
            } => (n_tokens * per_token).div_ceil(per_workgroup.max(1)),
            Extent::PositionSplits {
                min_len,
                most_decode,
                most_prefill,
            } => {
                let most = if n_tokens == 1 {
                    most_decode
                } else {
                    most_prefill
                };
                seq_len.div_ceil(min_len.max(1)).clamp(1, most.max(1))
            }
        }
    }
}

/// A dispatch's workgroup counts on x, y and z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid(pub [Extent; 3]);

/// Most workgroups on one axis of a dispatch (WebGPU's default limit).
pub const MAX_WORKGROUPS_PER_DIMENSION: u32 = 65_535;

impl Grid {
    pub fn size(&self, n_tokens: u32, seq_len: u32) -> [u32; 3] {
        self.0.map(|e| e.size(n_tokens, seq_len))
    }

    /// `groups` workgroups spread over x (up to the axis limit) and y, with `z` on z.
    pub fn spread(groups: u32, z: Extent) -> Grid {
        let x = groups.clamp(1, MAX_WORKGROUPS_PER_DIMENSION);
        Grid([Extent::Fixed(x), Extent::Fixed(groups.div_ceil(x)), z])
    }
}

/// A compiled kernel variant: its pipeline and bind group layout.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl Pipeline {
    /// A bind group over one dispatch's buffers.
    pub fn bind<'a, K: Kernel>(
        &self,
        device: &wgpu::Device,
        label: &str,
        bindings: &K::Bindings<'a>,
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = bindings
            .buffers()
            .into_iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// Compiled pipelines, built at model load and reused for every step. Layouts are shared by
/// kernels with the same bindings, so one bind group serves every variant of a kernel (decode
/// and prefill tiles of a mat-mul).
#[derive(Default)]
pub struct Pipelines {
    layouts: HashMap<&'static [Binding], wgpu::BindGroupLayout>,
    pipelines: HashMap<String, Pipeline>,
}

impl Pipelines {
    fn layout(
        &mut self,
        device: &wgpu::Device,
        bindings: &'static [Binding],
    ) -> wgpu::BindGroupLayout {
        self.layouts
            .entry(bindings)
            .or_insert_with(|| {
                let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                    .iter()
                    .enumerate()
                    .map(|(i, binding)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match binding.access {
                                Access::Uniform => wgpu::BufferBindingType::Uniform,
                                Access::Read | Access::ReadWrite => {
                                    wgpu::BufferBindingType::Storage {
                                        read_only: binding.access == Access::Read,
                                    }
                                }
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: None,
                    entries: &entries,
                })
            })
            .clone()
    }

    /// The pipeline of `kernel`, compiled on first use; `None` for a variant the kernel cannot
    /// provide.
    pub fn get<K: Kernel>(&mut self, device: &wgpu::Device, kernel: K) -> Option<Pipeline> {
        let label = format!("{kernel:?}");
        if let Some(p) = self.pipelines.get(&label) {
            return Some(p.clone());
        }
        let source = kernel.module()?.source();
        let layout = self.layout(device, <K::Bindings<'static> as BindingSet>::LAYOUT);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
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
        let compiled = Pipeline { pipeline, layout };
        self.pipelines.insert(label, compiled.clone());
        Some(compiled)
    }
}
