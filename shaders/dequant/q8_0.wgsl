// Q8_0: 34-byte blocks of 32: f16 d, 32 signed bytes; value = d * q.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + c * 34u;
    return load_f16(b) * sext8(bytes4(b + 2u + 4u * i));
}

// sum of chunk c's 32 values times the activations x, the scale applied once; each word of
// the quants loaded once.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + c * 34u;
    let qs = b + 2u;
    var cur = W[qs >> 2u];
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let next = W[(qs >> 2u) + 1u + i];
        s += dot(vec4<f32>(unpack4xI8(even_word(cur, next, qs))), x.v[i]);
        cur = next;
    }
    return load_f16(b) * s;
}
