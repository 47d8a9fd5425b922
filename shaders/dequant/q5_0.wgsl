// Q5_0: 22-byte blocks of 32: f16 d, u32 of fifth bits (bit j for value j), 16 bytes of
// nibbles; value = d * ((nibble | fifth bit << 4) - 16).
fn dequant4(row: u32, c: u32, i: u32) -> vec4<f32> {
    let b = row + c * 22u;
    let j = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
    let high = ((vec4<u32>(load_u32(b + 2u)) >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
    let low = (bytes4(b + 6u + 4u * (i & 3u)) >> vec4<u32>((i >> 2u) * 4u)) & vec4<u32>(15u);
    return load_f16(b) * (vec4<f32>(low | high) - 16.0);
}

// sum of chunk c's 32 values times the activations x: each word of the block loaded once, the
// scale applied once; four values assembled at a time in a word (nibbles masked, fifth bits
// spread).
fn chunk_dot(row: u32, c: u32, x: XChunk) -> f32 {
    let b = row + c * 22u;
    // qh at b + 2 and the nibbles from b + 6 form one stream of 5 words.
    let o = b + 2u;
    var cur = W[o >> 2u];
    var next = W[(o >> 2u) + 1u];
    let qh = even_word(cur, next, o);
    cur = next;
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        next = W[(o >> 2u) + 2u + i];
        let q = even_word(cur, next, o);
        cur = next;
        let h = qh >> (4u * i);
        let low = (q & 0x0f0f0f0fu) | spread_bits4(h & 15u);
        let high = ((q >> 4u) & 0x0f0f0f0fu) | spread_bits4((h >> 16u) & 15u);
        s += dot(vec4<f32>(unpack4xU8(low)), x.v[i]);
        s += dot(vec4<f32>(unpack4xU8(high)), x.v[4u + i]);
    }
    return load_f16(b) * (s - 16.0 * x.sum);
}
