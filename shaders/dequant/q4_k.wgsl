// Q4_K: 144-byte blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of
// nibbles. Sub-block s (32 values) uses byte group s/2, low nibbles for even s:
// value = d * scale_s * q - dmin * min_s.
fn dequant_chunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    let b = row + (c >> 3u) * 144u;
    let s = c & 7u;
    let sm = scale_min_k4(b + 4u, s);
    let d = load_f16(b) * sm.x;
    let m = load_f16(b + 2u) * sm.y;
    let qs = b + 16u + (s >> 1u) * 32u;
    let shift = vec4<u32>((s & 1u) * 4u);
    for (var i = 0u; i < 8u; i++) {
        let q = (bytes4(qs + 4u * i) >> shift) & vec4<u32>(15u);
        out[i] = d * vec4<f32>(q) - m;
    }
    return out;
}
