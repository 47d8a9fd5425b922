// Sum over the 8 invocations of a row with subgroup shuffles: no barriers, no shared memory.
// Needs subgroups of at least 8 invocations (a row's 8 lanes then share one subgroup).

fn row_sum(v: f32, lid: u32) -> f32 {
    var s = v;
    s += subgroupShuffleXor(s, 4u);
    s += subgroupShuffleXor(s, 2u);
    s += subgroupShuffleXor(s, 1u);
    return s;
}
