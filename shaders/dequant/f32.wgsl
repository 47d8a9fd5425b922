// F32 rows: values 4i..4i+3 of 32-value chunk c, 4-byte aligned.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let w = (row + c * 128u + i * 16u) >> 2u;
    return bitcast<vec4<f32>>(vec4<u32>(W[w], W[w + 1u], W[w + 2u], W[w + 3u]));
}

// sum of chunk c's 32 values times the activations x.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        s += dot(dequant4(row, c, i), x.v[i]);
    }
    return s;
}
