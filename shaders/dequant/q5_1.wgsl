// Q5_1: 24-byte blocks of 32: f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles;
// value = d * (nibble | fifth bit << 4) + m.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + c * 24u;
    let j = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
    let high = ((vec4<u32>(load_u32(b + 4u)) >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
    let low = (bytes4(b + 8u + 4u * (i & 3u)) >> vec4<u32>((i >> 2u) * 4u)) & vec4<u32>(15u);
    return load_f16(b) * vec4<f32>(low | high) + load_f16(b + 2u);
}

// sum of chunk c's 32 values times the activations x: d * sum(q x) + m * sum(x).
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + c * 24u;
    let qh = vec4<u32>(load_u32(b + 4u));
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 8u + 4u * i);
        let j = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
        let h0 = ((qh >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
        let h1 = ((qh >> (j + 16u)) & vec4<u32>(1u)) << vec4<u32>(4u);
        let x0 = x.v[i];
        let x1 = x.v[4u + i];
        s += dot(vec4<f32>((q & vec4<u32>(15u)) | h0), x0);
        s += dot(vec4<f32>((q >> vec4<u32>(4u)) | h1), x1);
    }
    return load_f16(b) * s + load_f16(b + 2u) * x.sum;
}
