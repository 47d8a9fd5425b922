//! A model as one table of tensors, whether it is one GGUF file or a gguf-split set of shards.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::error::GgufError;
use super::header::{GgufHeader, TensorInfo};
use super::metadata::Metadata;

const KEY_SPLIT_NO: &str = "split.no";
const KEY_SPLIT_COUNT: &str = "split.count";
const KEY_SPLIT_TENSORS: &str = "split.tensors.count";

/// A shard's place in a split model, from its `split.*` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitInfo {
    /// 0-based shard index.
    pub index: u16,
    pub count: u16,
    /// Tensors in all shards together.
    pub total_tensors: u64,
}

impl SplitInfo {
    /// The split description of a shard, or `None` for a file that is not part of a split.
    pub fn of(header: &GgufHeader) -> Result<Option<SplitInfo>, GgufError> {
        let md = &header.metadata;
        if !md.contains(KEY_SPLIT_COUNT) {
            return Ok(None);
        }
        let get = |key: &str| {
            md.get(key)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| GgufError::BadSplit {
                    reason: format!("{key} is missing or not a non-negative integer"),
                })
        };
        let count = get(KEY_SPLIT_COUNT)?;
        let index = get(KEY_SPLIT_NO)?;
        let total_tensors = get(KEY_SPLIT_TENSORS)?;
        let bad = |reason: String| GgufError::BadSplit { reason };
        let count = u16::try_from(count)
            .ok()
            .filter(|&c| c >= 1)
            .ok_or_else(|| bad(format!("{KEY_SPLIT_COUNT} = {count}")))?;
        let index = u16::try_from(index)
            .ok()
            .filter(|&i| i < count)
            .ok_or_else(|| bad(format!("{KEY_SPLIT_NO} = {index} with {count} shards")))?;
        Ok(Some(SplitInfo {
            index,
            count,
            total_tensors,
        }))
    }
}

/// `prefix-00002-of-00005.gguf` for 0-based shard `index` of `count`, as gguf-split names them.
pub fn shard_file_name(prefix: &str, index: u16, count: u16) -> String {
    format!("{prefix}-{:05}-of-{count:05}.gguf", u32::from(index) + 1)
}

/// One tensor of a model, with the shard holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTensor {
    pub info: TensorInfo,
    pub shard: usize,
    /// Absolute byte offset of the tensor's data in its shard file.
    pub file_offset: u64,
}

/// A whole model: the headers of its shards (one for an unsplit file) and all its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufModel {
    shards: Vec<GgufHeader>,
    tensors: Vec<ModelTensor>,
    /// Position in `tensors` of each name, so joining shards and looking tensors up stay
    /// logarithmic per tensor (a B-tree for the reason given at [`Metadata`]).
    index: BTreeMap<String, usize>,
}

impl GgufModel {
    /// Joins the headers of a model's files, in shard order, into one model.
    ///
    /// Checks that the shards belong together: matching `split.count`, consecutive `split.no`,
    /// the announced total tensor count, and no tensor name in two shards.
    pub fn from_shards(shards: Vec<GgufHeader>) -> Result<GgufModel, GgufError> {
        let bad = |reason: String| GgufError::BadSplit { reason };
        let first = shards
            .first()
            .ok_or_else(|| bad("no shards given".into()))?;
        let expected = SplitInfo::of(first)?;
        match expected {
            None if shards.len() > 1 => {
                return Err(bad(format!(
                    "{} files given but the first has no {KEY_SPLIT_COUNT}",
                    shards.len()
                )))
            }
            Some(info) if usize::from(info.count) != shards.len() => {
                return Err(bad(format!(
                    "{} shards announced, {} given",
                    info.count,
                    shards.len()
                )))
            }
            _ => {}
        }
        for (i, shard) in shards.iter().enumerate().skip(1) {
            let info = SplitInfo::of(shard)?
                .ok_or_else(|| bad(format!("shard {} has no {KEY_SPLIT_COUNT}", i + 1)))?;
            if let Some(first_info) = expected {
                if info.count != first_info.count
                    || info.total_tensors != first_info.total_tensors
                    || usize::from(info.index) != i
                {
                    return Err(bad(format!(
                        "shard {} says it is {} of {} with {} tensors; expected {} of {} with {}",
                        i + 1,
                        info.index + 1,
                        info.count,
                        info.total_tensors,
                        i + 1,
                        first_info.count,
                        first_info.total_tensors
                    )));
                }
            }
        }
        if let Some(info) = expected {
            if info.index != 0 {
                return Err(bad(format!("the first file is shard {}", info.index + 1)));
            }
        }

        let mut tensors: Vec<ModelTensor> =
            Vec::with_capacity(shards.iter().map(|h| h.tensors.len()).sum());
        let mut index = BTreeMap::new();
        for (shard, header) in shards.iter().enumerate() {
            for info in &header.tensors {
                if index.insert(info.name.clone(), tensors.len()).is_some() {
                    return Err(bad(format!("tensor {:?} is in two shards", info.name)));
                }
                tensors.push(ModelTensor {
                    info: info.clone(),
                    shard,
                    file_offset: header.data_offset + info.offset,
                });
            }
        }
        if let Some(info) = expected {
            if info.total_tensors != tensors.len() as u64 {
                return Err(bad(format!(
                    "{} tensors announced, {} found",
                    info.total_tensors,
                    tensors.len()
                )));
            }
        }
        Ok(GgufModel {
            shards,
            tensors,
            index,
        })
    }

    /// The model's metadata: that of its first shard, where gguf-split keeps it all.
    pub fn metadata(&self) -> &Metadata {
        &self.shards[0].metadata
    }

    pub fn shards(&self) -> &[GgufHeader] {
        &self.shards
    }

    pub fn tensors(&self) -> &[ModelTensor] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&ModelTensor> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The `inspect --json` document: version, metadata (arrays longer than `max_array`
    /// summarised), tensors with ggml type names and absolute offsets, and per-shard extents.
    pub fn inspect_json(&self, max_array: Option<usize>) -> Json {
        let tensors: Vec<Json> = self
            .tensors
            .iter()
            .map(|t| {
                let mut entry = json!({
                    "name": t.info.name,
                    "type": t.info.ggml_type.name(),
                    "shape": t.info.shape,
                    "offset": t.file_offset,
                    "bytes": t.info.bytes,
                });
                if self.shards.len() > 1 {
                    entry["shard"] = json!(t.shard);
                }
                entry
            })
            .collect();
        let shards: Vec<Json> = self
            .shards
            .iter()
            .map(|h| {
                json!({
                    "version": h.version,
                    "alignment": h.alignment,
                    "tensor_count": h.tensors.len(),
                    "data_offset": h.data_offset,
                    "data_end": h.data_end(),
                })
            })
            .collect();
        json!({
            "version": self.shards[0].version,
            "metadata": self.metadata().to_json(max_array),
            "tensors": tensors,
            "shards": shards,
        })
    }
}
