//! RMSNorm: `Y[t] = X[t] / sqrt(mean(X[t]²) + eps) * WEIGHT`, one workgroup per token (or the
//! step's last token only, before the output projection).

use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

use super::common::{StepUniform, WORKGROUP_REDUCE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RmsNorm;

wgsl_uniform! {
    pub struct NormParams as "Params" {
        n: u32,
        eps: f32,
        /// Normalise only the step's last token, into `Y`'s first row.
        last_only: u32,
        _pad: u32,
    }
}

kernel_bindings! {
    pub struct RmsNormBindings {
        x => X: Read,
        weight => WEIGHT: Read,
        y => Y: ReadWrite,
        params => P: Uniform,
        step => S: Uniform,
    }
}

impl Kernel for RmsNorm {
    type Bindings<'a> = RmsNormBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(
            Module::new(include_str!("../../../shaders/rms_norm.wgsl"))
                .uniform::<StepUniform>()
                .uniform::<NormParams>()
                .snippet(&WORKGROUP_REDUCE),
        )
    }
}

impl RmsNorm {
    /// One workgroup per token, or one for the last token only.
    pub fn grid(last_only: bool) -> Grid {
        let tokens = if last_only {
            Extent::Fixed(1)
        } else {
            Extent::Tokens
        };
        Grid([tokens, Extent::Fixed(1), Extent::Fixed(1)])
    }
}
