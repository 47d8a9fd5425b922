// 32 activations and their sum: what a mat-vec's `chunk_dot` multiplies a weight chunk with.
struct XChunk {
    v: array<vec4<f32>, 8>,
    sum: f32,
}
