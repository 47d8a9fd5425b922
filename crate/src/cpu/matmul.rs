//! Matrix × activations on the CPU: rows split across the threads in blocks, each weight row
//! unpacked once and dotted with every token's activations, which are quantized once per
//! product. The row loop is compiled twice, the second time for AVX2 + FMA, chosen at run time.

use std::cell::OnceCell;

use half::f16;

use crate::gguf::GgmlType;

use super::parallel::for_each_chunk;
use super::quant_dot::{
    dot_block32, dot_f32, dot_super256, form, quantize_block32, quantize_super256, unpack, Form,
    Quantized, Unpacked,
};
use super::weights::CpuMatrix;

/// Weight rows per parallel task: enough work to amortize scheduling, few enough to balance.
const ROWS_PER_TASK: usize = 16;

/// `n` tokens' activations (`n × cols`, token-major), quantized on first use in each form.
pub(crate) struct Activations<'a> {
    x: &'a [f32],
    cols: usize,
    block32: OnceCell<Vec<Quantized>>,
    super256: OnceCell<Vec<Quantized>>,
    /// `x` through f16, as ggml converts activations for F16 weights.
    through_f16: OnceCell<Vec<f32>>,
}

impl<'a> Activations<'a> {
    pub fn new(x: &'a [f32], cols: usize) -> Self {
        Activations {
            x,
            cols,
            block32: OnceCell::new(),
            super256: OnceCell::new(),
            through_f16: OnceCell::new(),
        }
    }

    fn n(&self) -> usize {
        self.x.len() / self.cols
    }

    /// The f32 activations a [`Form::Float`] row of `ty` meets.
    fn float(&self, ty: GgmlType) -> &[f32] {
        match ty {
            GgmlType::F16 => self
                .through_f16
                .get_or_init(|| self.x.iter().map(|&v| f16::from_f32(v).to_f32()).collect()),
            _ => self.x,
        }
    }

    /// Each token's activations in the integer form `form` needs (none for f32).
    fn quantized(&self, form: Form) -> &[Quantized] {
        let quantize = |f: fn(&[f32], &mut Quantized)| {
            self.x
                .chunks_exact(self.cols)
                .map(|row| {
                    let mut q = Quantized::default();
                    f(row, &mut q);
                    q
                })
                .collect()
        };
        match form {
            Form::Block32 => self.block32.get_or_init(|| quantize(quantize_block32)),
            Form::Super256 => self.super256.get_or_init(|| quantize(quantize_super256)),
            Form::Float => &[],
        }
    }
}

/// `out[t][r] = w[r] · x[t]` for every token `t` and row `r` (`out` is `n × w.rows`).
pub(crate) fn matmul(w: &CpuMatrix, a: &Activations, out: &mut [f32]) {
    let n = a.n();
    let q = a.quantized(form(w.ty));
    let x = a.float(w.ty);
    if n == 1 {
        for_each_chunk(out, ROWS_PER_TASK, |task, chunk| {
            rows(w, x, q, task * ROWS_PER_TASK, chunk)
        });
        return;
    }
    let mut by_row = vec![0f32; w.rows * n];
    for_each_chunk(&mut by_row, ROWS_PER_TASK * n, |task, chunk| {
        rows(w, x, q, task * ROWS_PER_TASK, chunk)
    });
    for (r, values) in by_row.chunks_exact(n).enumerate() {
        for (t, &v) in values.iter().enumerate() {
            out[t * w.rows + r] = v;
        }
    }
}

/// Rows `first..` of `w` into `out` (row-major: each row's `n` token results).
fn rows(w: &CpuMatrix, x: &[f32], q: &[Quantized], first: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU has the features `rows_avx2` is compiled for.
        return unsafe { rows_avx2(w, x, q, first, out) };
    }
    rows_portable(w, x, q, first, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_avx2(w: &CpuMatrix, x: &[f32], q: &[Quantized], first: usize, out: &mut [f32]) {
    let n = q.len().max(1);
    // Q8_0 and Q5_0 (most of a Q4_K_M model) are dotted straight from their blocks.
    for (i, results) in out.chunks_exact_mut(n).enumerate() {
        if super::avx2::dot_row_from_blocks(w.ty, w.row(first + i), q, results).is_none() {
            return rows_with::<true>(w, x, q, first, out);
        }
    }
}

fn rows_portable(w: &CpuMatrix, x: &[f32], q: &[Quantized], first: usize, out: &mut [f32]) {
    rows_with::<false>(w, x, q, first, out)
}

/// The row loop; `AVX2`: the integer dots in AVX2 (only ever set on x86-64 CPUs with AVX2,
/// FMA and F16C).
#[inline(always)]
fn rows_with<const AVX2: bool>(
    w: &CpuMatrix,
    x: &[f32],
    q: &[Quantized],
    first: usize,
    out: &mut [f32],
) {
    let n = (x.len() / w.cols).max(1);
    let form = form(w.ty);
    let mut u = Unpacked::default();
    for (i, results) in out.chunks_exact_mut(n).enumerate() {
        unpack(w.ty, w.row(first + i), w.cols, &mut u);
        match form {
            Form::Block32 => {
                for (r, a) in results.iter_mut().zip(q) {
                    *r = match AVX2 {
                        // SAFETY: AVX2 is only set where the CPU has AVX2 and FMA.
                        #[cfg(target_arch = "x86_64")]
                        true => unsafe { super::avx2::dot_block32(&u, a) },
                        _ => dot_block32(&u, a),
                    };
                }
            }
            Form::Super256 => {
                for (r, a) in results.iter_mut().zip(q) {
                    *r = match AVX2 {
                        // SAFETY: as above.
                        #[cfg(target_arch = "x86_64")]
                        true => unsafe { super::avx2::dot_super256(&u, a) },
                        _ => dot_super256(&u, a),
                    };
                }
            }
            Form::Float => {
                for (r, xt) in results.iter_mut().zip(x.chunks_exact(w.cols)) {
                    *r = dot_f32(&u.f, xt);
                }
            }
        }
    }
}
