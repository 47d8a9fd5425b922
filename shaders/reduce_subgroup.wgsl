// Sum over the LANES (4 or 8) invocations of a row group with subgroup shuffles: no barriers,
// no shared memory. Needs subgroups of at least LANES invocations (a group's lanes then share
// one subgroup).

fn row_sum(v: vec4<f32>, lid: u32) -> vec4<f32> {
    var s = v;
    if (LANES == 8u) {
        s += subgroupShuffleXor(s, 4u);
    }
    s += subgroupShuffleXor(s, 2u);
    s += subgroupShuffleXor(s, 1u);
    return s;
}
