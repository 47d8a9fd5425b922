// Stores into a q8_0 KV cache: the workgroup's 32 invocations each hold one value of the block
// starting at element `first` (a multiple of 32); together they find its largest magnitude,
// quantize to round(x / d) with d = max|x| / 127 (ggml's q8_0 scale; WGSL rounds ties to even
// where ggml rounds them away from zero), pack four bytes to a word and write the scale after
// the values (from word P.kv_scales_at). Every invocation holds a value (the cache type requires
// runs of whole blocks). Called in uniform control flow.

var<workgroup> q8_scratch: array<f32, 32>;
var<workgroup> q8_bytes: array<u32, 32>;

fn store_run(to_v: bool, first: u32, x: f32, lid: u32, valid: bool) {
    q8_scratch[lid] = abs(x);
    workgroupBarrier();
    for (var stride = 16u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            q8_scratch[lid] = max(q8_scratch[lid], q8_scratch[lid + stride]);
        }
        workgroupBarrier();
    }
    let d = q8_scratch[0] / 127.0;
    let q = select(0, i32(round(x / d)), d > 0.0);
    q8_bytes[lid] = bitcast<u32>(q) & 0xffu;
    workgroupBarrier();
    if (lid < 8u) {
        let word = q8_bytes[4u * lid] | (q8_bytes[4u * lid + 1u] << 8u)
            | (q8_bytes[4u * lid + 2u] << 16u) | (q8_bytes[4u * lid + 3u] << 24u);
        if (to_v) {
            V_CACHE[first / 4u + lid] = word;
        } else {
            K_CACHE[first / 4u + lid] = word;
        }
    }
    if (lid == 0u) {
        if (to_v) {
            V_CACHE[P.kv_scales_at + first / 32u] = bitcast<u32>(d);
        } else {
            K_CACHE[P.kv_scales_at + first / 32u] = bitcast<u32>(d);
        }
    }
    workgroupBarrier();
}
