// Sum over the LANES invocations of a row group through workgroup memory, for adapters without
// subgroups. Called in uniform control flow by the whole workgroup.
var<workgroup> partial: array<vec4<f32>, 64>;

fn row_sum(v: vec4<f32>, lid: u32) -> vec4<f32> {
    partial[lid] = v;
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
        if ((lid % LANES) < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[lid - lid % LANES];
    workgroupBarrier();
    return total;
}
