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
