// Q4_K: 144-byte blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of
// nibbles. Sub-block s (32 values) uses byte group s/2, low nibbles for even s:
// value = d * scale_s * q - dmin * min_s.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + (c >> 3u) * 144u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let q = (bytes4(b + 16u + (s >> 1u) * 32u + 4u * i) >> vec4<u32>((s & 1u) * 4u)) & vec4<u32>(15u);
    return (load_f16(b) * sm.x) * vec4<f32>(q) - load_f16(b + 2u) * sm.y;
}

// sum of chunk c's 32 values times the activations x: d_s * sum(q x) - m_s * sum(x). Blocks
// (144 or 176 bytes) and rows are whole words, so quants load as aligned words.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + (c >> 3u) * 144u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let qs = b + 16u + (s >> 1u) * 32u;
    let shift = (s & 1u) * 4u;
    var sq = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let q = (W[(qs >> 2u) + i] >> shift) & 0x0f0f0f0fu;
        sq += dot(vec4<f32>(unpack4xU8(q)), x.v[i]);
    }
    return (load_f16(b) * sm.x) * sq - (load_f16(b + 2u) * sm.y) * x.sum;
}
