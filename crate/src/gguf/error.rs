//! Why a GGUF file (or set of shards) was rejected: [`GgufError`], with the byte offset where
//! the file went wrong.

/// Why a GGUF file (or set of shards) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file: the first bytes are {found:02x?}, not \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("GGUF version {version} is not supported (2 and 3 are)")]
    UnsupportedVersion { version: u32 },
    #[error("big-endian GGUF (version {version}) is not supported")]
    BigEndian { version: u32 },
    #[error("file truncated at byte {offset}: {what} needs {needed} more bytes")]
    Truncated {
        offset: u64,
        what: String,
        needed: u64,
    },
    #[error("at byte {offset}: the header would exceed {limit} bytes")]
    HeaderTooLarge { offset: u64, limit: u64 },
    #[error("at byte {offset}: {what} of {value} exceeds the limit of {limit}")]
    TooLarge {
        offset: u64,
        what: String,
        value: u64,
        limit: u64,
    },
    #[error("at byte {offset}: unknown metadata value type {type_id}")]
    UnknownValueType { offset: u64, type_id: u32 },
    #[error("at byte {offset}: bool value {value} is neither 0 nor 1")]
    BadBool { offset: u64, value: u8 },
    #[error("at byte {offset}: {what} is not valid UTF-8")]
    BadUtf8 { offset: u64, what: String },
    #[error("at byte {offset}: metadata key {key:?} appears twice")]
    DuplicateKey { offset: u64, key: String },
    #[error("general.alignment {value} is not a power of two up to 1 MiB")]
    BadAlignment { value: String },
    #[error("at byte {offset}: tensor {name:?} has unknown ggml type {type_id}")]
    UnknownTensorType {
        offset: u64,
        name: String,
        type_id: u32,
    },
    #[error("at byte {offset}: tensor {name:?} has a bad shape: {reason}")]
    BadShape {
        offset: u64,
        name: String,
        reason: String,
    },
    #[error("at byte {offset}: tensor {name:?} appears twice")]
    DuplicateTensor { offset: u64, name: String },
    #[error("tensor {name:?} data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned {
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor {name:?} ({bytes} bytes at byte {offset}) reaches past the end of the {file_len}-byte file")]
    TensorOutOfFile {
        name: String,
        offset: u64,
        bytes: u64,
        file_len: u64,
    },
    #[error("tensors {first:?} and {second:?} overlap at data offset {offset}")]
    TensorOverlap {
        first: String,
        second: String,
        offset: u64,
    },
    #[error("split model: {reason}")]
    BadSplit { reason: String },
}
