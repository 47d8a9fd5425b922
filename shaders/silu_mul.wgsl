// GATE[i] = silu(GATE[i]) * UP[i] over the step's tokens.

struct Params {
    n: u32,   // elements per token
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    n_tokens: u32,
    pos: u32,
    seq_len: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> GATE: array<f32>;
@group(0) @binding(1) var<storage, read> UP: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= P.n * S.n_tokens) {
        return;
    }
    let g = GATE[i];
    GATE[i] = g / (1.0 + exp(-g)) * UP[i];
}
