//! GGUF model files: header parsing, tensor tables and split (multi-shard) models as one model.
//!
//! Parsing is incremental ([`parse_header`] says how many more bytes it needs), so a browser can
//! parse while the file downloads, and defensive: every error is a typed [`GgufError`] carrying
//! the byte offset where the file went wrong.

mod error;
mod header;
mod metadata;
mod split;
mod types;

pub use error::GgufError;
pub use header::{parse_header, GgufHeader, HeaderParse, Limits, TensorInfo};
pub use metadata::{Metadata, MetadataArray, MetadataValue};
pub use split::{shard_file_name, GgufModel, ModelTensor, SplitInfo};
pub use types::GgmlType;
