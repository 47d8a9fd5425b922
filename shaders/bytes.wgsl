// Byte-level reads from the packed weight buffer `W: array<u32>`: quantized blocks are not
// 4-byte aligned (Q8_0 blocks are 34 bytes), so values are assembled from 32-bit words.

// The little-endian 32-bit word starting at byte offset `o` (any alignment).
fn load_u32(o: u32) -> u32 {
    let i = o >> 2u;
    let s = (o & 3u) * 8u;
    // Branch-free: lanes of a row read blocks of different alignments.
    return (W[i] >> s) | select(0u, W[i + 1u] << ((32u - s) & 31u), s != 0u);
}

// The byte at offset `o`.
fn load_u8(o: u32) -> u32 {
    return (W[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

// The f16 at byte offset `o` (2-byte aligned within its block), widened to f32.
fn load_f16(o: u32) -> f32 {
    return unpack2x16float((W[o >> 2u] >> ((o & 2u) * 8u)) & 0xffffu).x;
}

// Four bytes at `o` as the lanes of a vector, low byte first.
fn bytes4(o: u32) -> vec4<u32> {
    let w = load_u32(o);
    return vec4<u32>(w & 0xffu, (w >> 8u) & 0xffu, (w >> 16u) & 0xffu, w >> 24u);
}

// Sign-extends 8-bit lanes.
fn sext8(v: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(v << vec4<u32>(24u)) >> vec4<u32>(24u));
}

// Bits 0..3 of `b` moved to bit 4 of bytes 0..3 (Q5 fifth bits beside their nibbles): the
// multiply places copies of b at bits 0, 7, 14 and 21, whose ranges do not overlap.
fn spread_bits4(b: u32) -> u32 {
    return ((b * 0x00204081u) & 0x01010101u) << 4u;
}

// The word at even byte offset `o`, given `cur` = W[o >> 2] and `next` = W[(o >> 2) + 1]: a
// stream of words at an even offset read with one load per word, each carried over as the
// next word's `cur`. Every block type is a whole number of 2-byte units, so blocks and their
// fields start at even offsets.
fn even_word(cur: u32, next: u32, o: u32) -> u32 {
    return select((cur >> 16u) | (next << 16u), cur, (o & 2u) == 0u);
}
