// F16 rows: values 4i..4i+3 of 32-value chunk c (64 bytes); rows of whole chunks are 4-byte
// aligned.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let w = (row + c * 64u + i * 8u) >> 2u;
    return vec4<f32>(unpack2x16float(W[w]), unpack2x16float(W[w + 1u]));
}

// sum of chunk c's 32 values times the activations x.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        s += dot(dequant4(row, c, i), x.v[i]);
    }
    return s;
}
