// Scale and min of sub-block j from the 12 packed 6-bit bytes at `o` (Q4_K and Q5_K).
fn scale_min_k4(o: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(load_u8(o + j) & 63u), f32(load_u8(o + j + 4u) & 63u));
    }
    let hi = load_u8(o + j + 4u);
    let sc = (hi & 15u) | ((load_u8(o + j - 4u) >> 6u) << 4u);
    let m = (hi >> 4u) | ((load_u8(o + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}
