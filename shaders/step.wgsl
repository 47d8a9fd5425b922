// Per-step values, one uniform written before each submission.
struct Step {
    n_tokens: u32,  // tokens in this step
    pos: u32,       // cache position of the step's first token
    seq_len: u32,   // pos + n_tokens
    _pad: u32,
}
