// Q6_K: 210-byte blocks of 256: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16
// signed 8-bit scales, f16 d. Each half of 128 values has four groups of 32: group g takes the
// low (g < 2) or high nibble of ql[l + 32 * (g & 1)] and bits 2g..2g+1 of qh[l];
// value = d * scale[8 * half + l / 16 + 2 * g] * (q - 32).
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + (c >> 3u) * 210u;
    let half = (c >> 2u) & 1u;
    let g = c & 3u;
    let sc = load_u8(b + 192u + half * 8u + 2u * g + (i >> 2u));
    let d = load_f16(b + 208u) * f32(bitcast<i32>(sc << 24u) >> 24u);
    let low = (bytes4(b + half * 64u + (g & 1u) * 32u + 4u * i) >> vec4<u32>((g >> 1u) * 4u)) & vec4<u32>(15u);
    let high = ((bytes4(b + 128u + half * 32u + 4u * i) >> vec4<u32>(2u * g)) & vec4<u32>(3u)) << vec4<u32>(4u);
    return d * (vec4<f32>(low | high) - 32.0);
}

// sum of chunk c's 32 values times the activations x; the two 16-value halves have their own
// scales.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + (c >> 3u) * 210u;
    let half = (c >> 2u) & 1u;
    let g = c & 3u;
    let sc = b + 192u + half * 8u + 2u * g;
    let ql = b + half * 64u + (g & 1u) * 32u;
    let qh = b + 128u + half * 32u;
    let lshift = (g >> 1u) * 4u;
    let hshift = 2u * g;
    // Two streams of 8 words, each word loaded once.
    var low_cur = W[ql >> 2u];
    var high_cur = W[qh >> 2u];
    var s0 = 0.0;
    var s1 = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let low_next = W[(ql >> 2u) + 1u + i];
        let high_next = W[(qh >> 2u) + 1u + i];
        let low = (even_word(low_cur, low_next, ql) >> lshift) & 0x0f0f0f0fu;
        let high = ((even_word(high_cur, high_next, qh) >> hshift) & 0x03030303u) << 4u;
        low_cur = low_next;
        high_cur = high_next;
        let p = dot(vec4<f32>(unpack4xU8(low | high)) - 32.0, x.v[i]);
        if (i < 4u) {
            s0 += p;
        } else {
            s1 += p;
        }
    }
    let d = load_f16(b + 208u);
    let d0 = f32(bitcast<i32>(load_u8(sc) << 24u) >> 24u);
    let d1 = f32(bitcast<i32>(load_u8(sc + 1u) << 24u) >> 24u);
    return d * (d0 * s0 + d1 * s1);
}
