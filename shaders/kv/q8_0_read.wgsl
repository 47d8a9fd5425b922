// Reads of a q8_0 KV cache: each buffer holds the values as signed bytes, four to a word, then
// (from word P.kv_scales_at) one f32 scale per block of 32 values, as ggml's q8_0 blocks.

fn q8_byte(word: u32, byte: u32) -> f32 {
    return f32(bitcast<i32>(word << (24u - 8u * byte)) >> 24u);
}

fn load_k4(i: u32) -> vec4<f32> {
    let w = K_CACHE[i];
    let scale = bitcast<f32>(K_CACHE[P.kv_scales_at + i / 8u]);
    return vec4<f32>(q8_byte(w, 0u), q8_byte(w, 1u), q8_byte(w, 2u), q8_byte(w, 3u)) * scale;
}

fn load_v(e: u32) -> f32 {
    let scale = bitcast<f32>(V_CACHE[P.kv_scales_at + e / 32u]);
    return q8_byte(V_CACHE[e / 4u], e % 4u) * scale;
}
