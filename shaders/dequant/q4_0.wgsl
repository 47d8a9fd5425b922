// Q4_0: 18-byte blocks of 32: f16 d, 16 bytes of nibbles; value j is d * (nibble - 8), the low
// nibbles of the 16 bytes first.
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + c * 18u;
    let q = (bytes4(b + 2u + 4u * (i & 3u)) >> vec4<u32>((i >> 2u) * 4u)) & vec4<u32>(15u);
    return load_f16(b) * (vec4<f32>(q) - 8.0);
}

// sum of chunk c's 32 values times the activations x: each byte read once, the scale applied
// once; nibbles masked four at a time in a word.
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + c * 18u;
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = load_u32(b + 2u + 4u * i);
        s += dot(vec4<f32>(unpack4xU8(q & 0x0f0f0f0fu)), x.v[i]);
        s += dot(vec4<f32>(unpack4xU8((q >> 4u) & 0x0f0f0f0fu)), x.v[4u + i]);
    }
    return load_f16(b) * (s - 8.0 * x.sum);
}
