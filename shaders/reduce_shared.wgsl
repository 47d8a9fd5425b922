// Sum over the 8 invocations of a row through workgroup memory, for adapters without
// subgroups. Called in uniform control flow by the whole workgroup.
var<workgroup> partial: array<f32, 64>;

fn row_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var stride = 4u; stride > 0u; stride >>= 1u) {
        if ((lid & 7u) < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[lid & ~7u];
    workgroupBarrier();
    return total;
}
