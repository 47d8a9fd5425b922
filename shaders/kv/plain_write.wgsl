// Stores into an f16 or f32 KV cache (`kv1` = kv): the workgroup's 32 invocations each hold one
// value of a 32-value run starting at element `first` (`valid` where the run is shorter).

fn store_run(to_v: bool, first: u32, x: f32, lid: u32, valid: bool) {
    if (!valid) {
        return;
    }
    if (to_v) {
        V_CACHE[first + lid] = kv1(x);
    } else {
        K_CACHE[first + lid] = kv1(x);
    }
}
