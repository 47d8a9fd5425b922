// OUT = (index, value) of the largest of the first n LOGITS; the lowest index wins ties.

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> LOGITS: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    var v = -3.4e38;
    var idx = 0xffffffffu;
    for (var i = lid; i < P.n; i += WG) {
        if (LOGITS[i] > v) {
            v = LOGITS[i];
            idx = i;
        }
    }
    best_value[lid] = v;
    best_index[lid] = idx;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            let ov = best_value[lid + stride];
            let oi = best_index[lid + stride];
            if (ov > best_value[lid] || (ov == best_value[lid] && oi < best_index[lid])) {
                best_value[lid] = ov;
                best_index[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        OUT[0] = best_index[0];
        OUT[1] = bitcast<u32>(best_value[0]);
    }
}
