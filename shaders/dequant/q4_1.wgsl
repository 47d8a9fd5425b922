// Q4_1: 20-byte blocks of 32: f16 d, f16 m, 16 bytes of nibbles; value = d * nibble + m.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + c * 20u;
    let q = (bytes4(b + 4u + 4u * (i & 3u)) >> vec4<u32>((i >> 2u) * 4u)) & vec4<u32>(15u);
    return load_f16(b) * vec4<f32>(q) + load_f16(b + 2u);
}

// sum of chunk c's 32 values times the activations x: d * sum(q x) + m * sum(x).
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + c * 20u;
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(b + 4u + 4u * i);
        let x0 = x.v[i];
        let x1 = x.v[4u + i];
        s += dot(vec4<f32>(q & vec4<u32>(15u)), x0) + dot(vec4<f32>(q >> vec4<u32>(4u)), x1);
    }
    return load_f16(b) * s + load_f16(b + 2u) * x.sum;
}
