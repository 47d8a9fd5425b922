//! Recording the forward pass at load ([`Builder`]: pipelines, bind groups, one [`Dispatch`]
//! per kernel launch, weight matrices split into pieces) and replaying it into a compute pass
//! for each step ([`record`]).

use crate::gpu::{GpuContext, Grid, Kernel, Pipeline, Pipelines, UniformStruct};
use crate::kernels::embed::{Embed, EmbedBindings, EmbedParams};
use crate::kernels::matmul::{MatMul, MatMulBindings, MatMulParams, RowReduce, BIAS};
use crate::kernels::matmul_tiled::MatMulTiled;

use super::error::EngineError;
use super::weights::Matrix;

/// Counters for benchmarks: what the last step cost.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StepStats {
    pub tokens: usize,
    pub dispatches: usize,
    pub submits: usize,
    pub weight_bytes_read: u64,
    pub bytes_read_back: u64,
}

/// A pipeline and the grid it is dispatched over.
#[derive(Clone)]
pub(super) struct Launch {
    pipeline: wgpu::ComputePipeline,
    grid: Grid,
}

impl Launch {
    pub(super) fn new(pipeline: &Pipeline, grid: Grid) -> Launch {
        Launch {
            pipeline: pipeline.pipeline.clone(),
            grid,
        }
    }
}

/// One recorded kernel launch.
pub(super) struct Dispatch {
    /// For single-token steps (decode).
    decode: Launch,
    /// For multi-token steps (prefill: tiled mat-muls, coarse attention splits; else the same).
    prefill: Launch,
    /// For steps of up to [`SHORT_PREFILL_TOKENS`] tokens where it differs from `prefill`
    /// (mat-muls: the mat-vec once per token).
    short_prefill: Option<Launch>,
    bind_group: wgpu::BindGroup,
    /// Weight bytes each workgroup layer (z slice) of this launch reads.
    weight_bytes: u64,
}

/// Steps of at most this many tokens run their mat-muls as one mat-vec per token: a tile of
/// the tiled kernel computes 32 tokens' worth whatever the step's count, which costs more than
/// reading the weights once per token for a few tokens (a short chat turn, a tool result).
pub(super) const SHORT_PREFILL_TOKENS: u32 = 4;

/// Encodes recorded dispatches into `pass` for a step of `n_tokens` tokens ending at cache
/// position `seq_len`.
pub(super) fn record(
    pass: &mut wgpu::ComputePass<'_>,
    dispatches: &[Dispatch],
    n_tokens: u32,
    seq_len: u32,
    stats: &mut StepStats,
) {
    for d in dispatches {
        let launch = match &d.short_prefill {
            _ if n_tokens == 1 => &d.decode,
            Some(short) if n_tokens <= SHORT_PREFILL_TOKENS => short,
            _ => &d.prefill,
        };
        let [x, y, z] = launch.grid.size(n_tokens, seq_len);
        pass.set_pipeline(&launch.pipeline);
        pass.set_bind_group(0, &d.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
        stats.dispatches += 1;
        stats.weight_bytes_read += d.weight_bytes * u64::from(z);
    }
}

/// Records dispatches and their bind groups while the model loads.
pub(super) struct Builder<'a> {
    ctx: &'a GpuContext,
    pipelines: Pipelines,
    /// Buffers that must outlive the bind groups built over them (uniforms made here).
    keep: Vec<wgpu::Buffer>,
    dispatches: Vec<Dispatch>,
    /// The per-step uniform every kernel but argmax binds.
    step: &'a wgpu::Buffer,
    /// Bound in the auxiliary slot of mat-muls that read none.
    no_aux: wgpu::Buffer,
}

impl<'a> Builder<'a> {
    pub(super) fn new(ctx: &'a GpuContext, step: &'a wgpu::Buffer) -> Result<Self, EngineError> {
        Ok(Builder {
            ctx,
            pipelines: Pipelines::default(),
            keep: Vec::new(),
            dispatches: Vec::new(),
            step,
            no_aux: ctx.storage_buffer("no-aux", 4)?,
        })
    }

    pub(super) fn step(&self) -> &'a wgpu::Buffer {
        self.step
    }

    /// A uniform buffer holding `value`, kept alive with the recording.
    pub(super) fn uniform<U: UniformStruct>(&mut self, label: &str, value: &U) -> wgpu::Buffer {
        let buffer = self.ctx.uniform(label, value);
        self.keep.push(buffer.clone());
        buffer
    }

    fn pipeline<K: Kernel>(&mut self, kernel: K) -> Result<Pipeline, EngineError> {
        self.pipelines
            .get(&self.ctx.device, kernel)
            .ok_or_else(|| EngineError::Unsupported {
                message: format!("the GPU kernels cannot build {kernel:?}"),
            })
    }

    /// Records one launch of `kernel` over `bindings`.
    pub(super) fn dispatch<K: Kernel>(
        &mut self,
        kernel: K,
        bindings: &K::Bindings<'_>,
        grid: Grid,
    ) -> Result<(), EngineError> {
        self.dispatch_pair([(kernel, grid), (kernel, grid)], bindings)
    }

    /// Records one launch over `bindings` of the decode variant `pair[0]` for single-token
    /// steps and the prefill variant `pair[1]` otherwise, each with its grid.
    pub(super) fn dispatch_pair<K: Kernel>(
        &mut self,
        pair: [(K, Grid); 2],
        bindings: &K::Bindings<'_>,
    ) -> Result<(), EngineError> {
        let [(decode, decode_grid), (prefill, prefill_grid)] = pair;
        let decode_pipeline = self.pipeline(decode)?;
        let prefill_pipeline = self.pipeline(prefill)?;
        self.push::<K>(
            &format!("{decode:?}"),
            &decode_pipeline,
            bindings,
            [
                Launch::new(&decode_pipeline, decode_grid),
                Launch::new(&prefill_pipeline, prefill_grid),
            ],
            None,
            0,
        );
        Ok(())
    }

    /// Records a launch whose pipelines share `bind_with`'s bind group layout (the kernels
    /// declare the same bindings).
    fn push<K: Kernel>(
        &mut self,
        label: &str,
        bind_with: &Pipeline,
        bindings: &K::Bindings<'_>,
        [decode, prefill]: [Launch; 2],
        short_prefill: Option<Launch>,
        weight_bytes: u64,
    ) {
        let bind_group = bind_with.bind::<K>(&self.ctx.device, label, bindings);
        self.dispatches.push(Dispatch {
            decode,
            prefill,
            short_prefill,
            bind_group,
            weight_bytes,
        });
    }

    /// The dispatches recorded since the last call, in order.
    pub(super) fn take(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.dispatches)
    }

    /// How many dispatches are recorded and not yet taken.
    pub(super) fn recorded(&self) -> usize {
        self.dispatches.len()
    }

    /// The buffers the recording must keep alive.
    pub(super) fn into_kept(self) -> Vec<wgpu::Buffer> {
        let mut keep = self.keep;
        keep.push(self.no_aux);
        keep
    }

    /// `out[t] = row tokens[t] of m`, one dispatch per weight piece.
    pub(super) fn embed(
        &mut self,
        m: &Matrix,
        tokens: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<(), EngineError> {
        let kernel = Embed { ty: m.ty };
        let pipeline = self.pipeline(kernel)?;
        for piece in &m.pieces {
            let params = self.uniform(
                "embed",
                &EmbedParams {
                    k: m.cols,
                    rows: piece.rows,
                    row_offset: piece.first_row,
                    row_bytes: m.row_bytes,
                },
            );
            let bindings = EmbedBindings {
                weights: &piece.buffer,
                tokens,
                x: out,
                params: &params,
                step: self.step,
            };
            let launch = Launch::new(&pipeline, Embed::grid(m.cols));
            self.push::<Embed>(
                "embed",
                &pipeline,
                &bindings,
                [launch.clone(), launch],
                None,
                0,
            );
        }
        Ok(())
    }

    /// `out (+)= m · x` (+ bias), one dispatch per weight piece. `x_token` is 0 to use every
    /// token of the step, or 1 + the one row of `x` to use.
    pub(super) fn matmul(
        &mut self,
        m: &Matrix,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        flags: u32,
        x_token: u32,
    ) -> Result<(), EngineError> {
        match bias {
            Some(bias) => self.matmul_with(m, x, out, bias, flags | BIAS, x_token),
            None => {
                let no_aux = self.no_aux.clone();
                self.matmul_with(m, x, out, &no_aux, flags, x_token)
            }
        }
    }

    /// `out (+)= m · x` combined with `aux` as `flags` say (see `kernels::matmul`).
    pub(super) fn matmul_with(
        &mut self,
        m: &Matrix,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        aux: &wgpu::Buffer,
        flags: u32,
        x_token: u32,
    ) -> Result<(), EngineError> {
        let matvec = MatMul {
            ty: m.ty,
            reduce: RowReduce::for_adapter(self.ctx.software, self.ctx.subgroup_min_size),
        };
        let decode = self.pipeline(matvec)?;
        // A mat-mul that reads one token runs as in decode even in a multi-token step.
        let single_token = x_token != 0;
        let prefill = match single_token {
            true => None,
            false => Some(self.pipeline(MatMulTiled { ty: m.ty })?),
        };
        for piece in &m.pieces {
            let params = self.uniform(
                "matmul",
                &MatMulParams {
                    k: m.cols,
                    rows: piece.rows,
                    row_offset: piece.first_row,
                    row_bytes: m.row_bytes,
                    y_stride: m.rows,
                    x_stride: m.cols / 4,
                    x_token,
                    flags,
                },
            );
            let bindings = MatMulBindings {
                weights: &piece.buffer,
                x,
                y: out,
                aux,
                params: &params,
                step: self.step,
            };
            let decode_launch = Launch::new(&decode, matvec.grid(piece.rows));
            let (prefill_launch, short_prefill) = match &prefill {
                Some(tiled) => (
                    Launch::new(tiled, MatMulTiled::grid(piece.rows)),
                    Some(Launch::new(&decode, matvec.grid_per_token(piece.rows))),
                ),
                None => (decode_launch.clone(), None),
            };
            self.push::<MatMul>(
                "matmul",
                &decode,
                &bindings,
                [decode_launch, prefill_launch],
                short_prefill,
                u64::from(piece.rows) * u64::from(m.row_bytes),
            );
        }
        Ok(())
    }
}
