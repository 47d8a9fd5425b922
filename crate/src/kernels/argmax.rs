//! The index and value of the largest logit (the greedy token), in one workgroup.

use crate::gpu::{Extent, Grid, Kernel, Module};
use crate::{kernel_bindings, wgsl_uniform};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argmax;

wgsl_uniform! {
    pub struct ArgmaxParams as "Params" {
        /// Logits to compare.
        n: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

kernel_bindings! {
    pub struct ArgmaxBindings {
        logits => LOGITS: Read,
        /// (index, value as f32 bits)
        out => OUT: ReadWrite,
        params => P: Uniform,
    }
}

impl Kernel for Argmax {
    type Bindings<'a> = ArgmaxBindings<'a>;

    fn module(&self) -> Option<Module> {
        Some(Module::new(include_str!("../../../shaders/argmax.wgsl")).uniform::<ArgmaxParams>())
    }
}

impl Argmax {
    pub fn grid() -> Grid {
        Grid([Extent::Fixed(1); 3])
    }
}
