// Reads of an f16 or f32 KV cache (`kv4` = vec4<kv>, `kv1` = kv, aliases the module declares):
// keys four values at a time, values one at a time, by element index / 4 and element index.

fn load_k4(i: u32) -> vec4<f32> {
    return vec4<f32>(K_CACHE[i]);
}

fn load_v(e: u32) -> f32 {
    return f32(V_CACHE[e]);
}
