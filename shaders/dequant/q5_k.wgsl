// Q5_K: 176-byte blocks of 256: f16 d, f16 dmin, 12 bytes of scales/mins, 32 bytes of fifth
// bits (bit s of byte l for value l of sub-block s), 128 bytes of nibbles as in Q4_K.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + (c >> 3u) * 176u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let low = (bytes4(b + 48u + (s >> 1u) * 32u + 4u * i) >> vec4<u32>((s & 1u) * 4u)) & vec4<u32>(15u);
    let high = ((bytes4(b + 16u + 4u * i) >> vec4<u32>(s)) & vec4<u32>(1u)) << vec4<u32>(4u);
    return (load_f16(b) * sm.x) * vec4<f32>(low | high) - load_f16(b + 2u) * sm.y;
}

// sum of chunk c's 32 values times the activations x: d_s * sum(q x) - m_s * sum(x). Blocks
// (144 or 176 bytes) and rows are whole words, so quants load as aligned words.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + (c >> 3u) * 176u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let qs = b + 48u + (s >> 1u) * 32u;
    let shift = (s & 1u) * 4u;
    var sq = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let low = (W[(qs >> 2u) + i] >> shift) & 0x0f0f0f0fu;
        let high = ((W[(b >> 2u) + 4u + i] >> s) & 0x01010101u) << 4u;
        sq += dot(vec4<f32>(unpack4xU8(low | high)), x.v[i]);
    }
    return (load_f16(b) * sm.x) * sq - (load_f16(b + 2u) * sm.y) * x.sum;
}
