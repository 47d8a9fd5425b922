//! Parsing of one GGUF file's header (metadata and tensor infos) from a prefix of its bytes.
//!
//! Every count and length read off the file is checked against the bytes that can still follow
//! and against [`Limits`] before anything is allocated, so hostile files cost bounded memory.

use std::collections::BTreeSet;

use super::error::GgufError;
use super::metadata::{value_type, Metadata, MetadataArray, MetadataValue};
use super::types::GgmlType;

const MAGIC: [u8; 4] = *b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// Bytes of the fixed part: magic, version, tensor count, metadata count.
const FIXED_HEADER_BYTES: u64 = 24;

/// Sanity caps applied on top of the bytes-left checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_tensors: u64,
    pub max_metadata_entries: u64,
    pub max_string_bytes: u64,
    pub max_array_elements: u64,
    pub max_array_depth: u32,
    /// The header (everything before the tensor data) may not be larger than this.
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensors: 1 << 16,
            max_metadata_entries: 1 << 16,
            max_string_bytes: 1 << 24,
            max_array_elements: 1 << 24,
            max_array_depth: 8,
            max_header_bytes: 1 << 28,
        }
    }
}

/// One tensor's description from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub ggml_type: GgmlType,
    /// Dimensions in ggml order: `shape[0]` is the innermost (contiguous) one.
    pub shape: Vec<u64>,
    /// Offset of the tensor's first byte from the start of the data region.
    pub offset: u64,
    /// Bytes the tensor occupies.
    pub bytes: u64,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        // Checked during parsing: the product fits.
        self.shape.iter().product()
    }

    /// Number of rows (all dimensions but the innermost).
    pub fn rows(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }

    pub fn row_bytes(&self) -> u64 {
        self.bytes / self.rows().max(1)
    }
}

/// The parsed header of one GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset where tensor data begins.
    pub data_offset: u64,
}

impl GgufHeader {
    /// A linear search: `tensors` is public and may be edited, so the header keeps no index by
    /// name. [`GgufModel::tensor`](super::GgufModel::tensor) has one.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Absolute file offset one past the last tensor byte.
    pub fn data_end(&self) -> u64 {
        // Checked during parsing: every tensor end fits in u64.
        self.tensors
            .iter()
            .map(|t| self.data_offset + t.offset + t.bytes)
            .max()
            .unwrap_or(self.data_offset)
    }

    /// Checks that all tensor data lies inside a file of `file_len` bytes.
    pub fn check_file_len(&self, file_len: u64) -> Result<(), GgufError> {
        if self.data_offset > file_len {
            return Err(GgufError::Truncated {
                offset: file_len,
                what: "tensor data region".into(),
                needed: self.data_offset - file_len,
            });
        }
        let data_len = file_len - self.data_offset;
        for t in &self.tensors {
            if t.offset + t.bytes > data_len {
                return Err(GgufError::TensorOutOfFile {
                    name: t.name.clone(),
                    offset: self.data_offset + t.offset,
                    bytes: t.bytes,
                    file_len,
                });
            }
        }
        Ok(())
    }
}

/// Outcome of parsing a prefix of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderParse {
    Complete(Box<GgufHeader>),
    /// The prefix ended inside the header: at least this many bytes from the start of the file
    /// are needed (more may be asked for on the next attempt).
    NeedBytes(u64),
}

/// Parses a GGUF header from `prefix`, the first bytes of a file of `file_len` bytes when known.
///
/// When `file_len` is known, a header reaching past it is [`GgufError::Truncated`] and tensors
/// reaching past it are [`GgufError::TensorOutOfFile`]; when it is not, running out of `prefix`
/// gives [`HeaderParse::NeedBytes`].
pub fn parse_header(
    prefix: &[u8],
    file_len: Option<u64>,
    limits: &Limits,
) -> Result<HeaderParse, GgufError> {
    let mut cursor = Cursor {
        buf: prefix,
        pos: 0,
        end: file_len.unwrap_or(u64::MAX).min(limits.max_header_bytes),
        file_len,
    };
    match read_header(&mut cursor, limits) {
        Ok(header) => {
            if let Some(len) = file_len {
                header.check_file_len(len)?;
            }
            Ok(HeaderParse::Complete(Box::new(header)))
        }
        Err(Stop::NeedBytes(n)) => Ok(HeaderParse::NeedBytes(n)),
        Err(Stop::Error(e)) => Err(e),
    }
}

/// Why reading stopped before the header was complete.
enum Stop {
    NeedBytes(u64),
    Error(GgufError),
}

impl From<GgufError> for Stop {
    fn from(e: GgufError) -> Self {
        Stop::Error(e)
    }
}

/// A read position over the available prefix, knowing where the header must end at the latest.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// No header byte may lie at or beyond this offset (file end or header size cap).
    end: u64,
    file_len: Option<u64>,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes that can still belong to the header after the current position.
    fn remaining_allowed(&self) -> u64 {
        self.end.saturating_sub(self.offset())
    }

    /// The error for a read of `n` bytes that cannot lie inside the header.
    fn overrun(&self, n: u64, what: &str) -> Stop {
        let offset = self.offset();
        Stop::Error(match self.file_len {
            Some(len) if offset.saturating_add(n) > len => GgufError::Truncated {
                offset,
                what: what.into(),
                needed: n,
            },
            _ => GgufError::HeaderTooLarge {
                offset,
                limit: self.end,
            },
        })
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], Stop> {
        let start = self.offset();
        if n > self.remaining_allowed() {
            return Err(self.overrun(n, what));
        }
        let available = (self.buf.len() - self.pos) as u64;
        if n > available {
            return Err(Stop::NeedBytes(start + n));
        }
        // n <= available <= buf.len(), so the cast and slice are in range.
        let bytes = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Stop> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Stop> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, Stop> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Stop> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Stop> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Checks that `count` items of at least `min_item_bytes` each can still fit, and against
    /// `cap`. Asks for the bytes all of them need at once when the prefix is too short, so a
    /// caller feeding a stream re-parses a few times rather than once per item.
    fn check_count(
        &self,
        count: u64,
        min_item_bytes: u64,
        cap: u64,
        what: &str,
    ) -> Result<usize, Stop> {
        let offset = self.offset();
        if count > cap {
            return Err(GgufError::TooLarge {
                offset,
                what: what.into(),
                value: count,
                limit: cap,
            }
            .into());
        }
        let needed = count.saturating_mul(min_item_bytes);
        if needed > self.remaining_allowed() {
            return Err(self.overrun(needed, what));
        }
        if needed > (self.buf.len() - self.pos) as u64 {
            return Err(Stop::NeedBytes(offset + needed));
        }
        // The items' minimal encodings are all in memory already, so reserving for all of them
        // costs at most a small multiple of the bytes read.
        Ok(count as usize)
    }

    fn string(&mut self, max_bytes: u64, what: &str) -> Result<String, Stop> {
        let offset = self.offset();
        let len = self.u64(what)?;
        if len > max_bytes {
            return Err(GgufError::TooLarge {
                offset,
                what: format!("{what} length"),
                value: len,
                limit: max_bytes,
            }
            .into());
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            GgufError::BadUtf8 {
                offset: offset + 8,
                what: what.into(),
            }
            .into()
        })
    }
}

fn read_header(c: &mut Cursor<'_>, limits: &Limits) -> Result<GgufHeader, Stop> {
    let magic = c.array::<4>("magic")?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic }.into());
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => {}
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(GgufError::BigEndian {
                version: v.swap_bytes(),
            }
            .into())
        }
        v => return Err(GgufError::UnsupportedVersion { version: v }.into()),
    }
    let tensor_count = c.u64("tensor count")?;
    let metadata_count = c.u64("metadata count")?;
    debug_assert_eq!(c.offset(), FIXED_HEADER_BYTES);

    // A metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes.
    let reserve = c.check_count(
        metadata_count,
        13,
        limits.max_metadata_entries,
        "metadata entries",
    )?;
    let mut metadata = Metadata::with_capacity(reserve);
    for _ in 0..metadata_count {
        let key_offset = c.offset();
        let key = c.string(limits.max_string_bytes, "metadata key")?;
        let value_offset = c.offset();
        let ty = c.u32("metadata value type")?;
        let value = read_value(c, ty, value_offset, limits, 0)?;
        metadata
            .push(key, value)
            .map_err(|key| GgufError::DuplicateKey {
                offset: key_offset,
                key,
            })?;
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 20 => a,
            _ => {
                return Err(GgufError::BadAlignment {
                    value: format!("{v:?}"),
                }
                .into())
            }
        },
    };

    // A tensor info takes at least 8 (name length) + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset).
    let reserve = c.check_count(tensor_count, 32, limits.max_tensors, "tensor infos")?;
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(reserve);
    // Names seen so far, for a duplicate check that stays logarithmic per tensor (a B-tree for the
    // reason given at [`Metadata`]).
    let mut names = BTreeSet::new();
    for _ in 0..tensor_count {
        let info_offset = c.offset();
        let tensor = read_tensor_info(c, limits, alignment)?;
        if !names.insert(tensor.name.clone()) {
            return Err(GgufError::DuplicateTensor {
                offset: info_offset,
                name: tensor.name,
            }
            .into());
        }
        tensors.push(tensor);
    }

    let data_offset = c.offset().next_multiple_of(alignment);
    check_no_overlap(&tensors)?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

fn read_value(
    c: &mut Cursor<'_>,
    ty: u32,
    offset: u64,
    limits: &Limits,
    depth: u32,
) -> Result<MetadataValue, Stop> {
    use value_type as t;
    let what = "metadata value";
    Ok(match ty {
        t::U8 => MetadataValue::U8(c.u8(what)?),
        t::I8 => MetadataValue::I8(c.u8(what)? as i8),
        t::U16 => MetadataValue::U16(c.u16(what)?),
        t::I16 => MetadataValue::I16(c.u16(what)? as i16),
        t::U32 => MetadataValue::U32(c.u32(what)?),
        t::I32 => MetadataValue::I32(c.u32(what)? as i32),
        t::F32 => MetadataValue::F32(f32::from_bits(c.u32(what)?)),
        t::BOOL => MetadataValue::Bool(read_bool(c)?),
        t::STRING => MetadataValue::String(c.string(limits.max_string_bytes, "metadata string")?),
        t::U64 => MetadataValue::U64(c.u64(what)?),
        t::I64 => MetadataValue::I64(c.u64(what)? as i64),
        t::F64 => MetadataValue::F64(f64::from_bits(c.u64(what)?)),
        t::ARRAY => MetadataValue::Array(read_array(c, limits, depth)?),
        other => {
            return Err(GgufError::UnknownValueType {
                offset,
                type_id: other,
            }
            .into())
        }
    })
}

fn read_bool(c: &mut Cursor<'_>) -> Result<bool, Stop> {
    let offset = c.offset();
    match c.u8("bool")? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(GgufError::BadBool { offset, value: v }.into()),
    }
}

fn read_array(c: &mut Cursor<'_>, limits: &Limits, depth: u32) -> Result<MetadataArray, Stop> {
    use value_type as t;
    let offset = c.offset();
    if depth >= limits.max_array_depth {
        return Err(GgufError::TooLarge {
            offset,
            what: "array nesting depth".into(),
            value: u64::from(depth) + 1,
            limit: u64::from(limits.max_array_depth),
        }
        .into());
    }
    let elem_type = c.u32("array element type")?;
    let len = c.u64("array length")?;
    let min_elem_bytes = match elem_type {
        t::U8 | t::I8 | t::BOOL => 1,
        t::U16 | t::I16 => 2,
        t::U32 | t::I32 | t::F32 => 4,
        t::U64 | t::I64 | t::F64 | t::STRING => 8,
        t::ARRAY => 12,
        other => {
            return Err(GgufError::UnknownValueType {
                offset,
                type_id: other,
            }
            .into())
        }
    };
    let reserve = c.check_count(
        len,
        min_elem_bytes,
        limits.max_array_elements,
        "array elements",
    )?;

    fn collect<T>(
        len: u64,
        reserve: usize,
        mut next: impl FnMut() -> Result<T, Stop>,
    ) -> Result<Vec<T>, Stop> {
        let mut v = Vec::with_capacity(reserve);
        for _ in 0..len {
            v.push(next()?);
        }
        Ok(v)
    }

    let what = "array element";
    Ok(match elem_type {
        t::U8 => MetadataArray::U8(c.take(len, what)?.to_vec()),
        t::I8 => MetadataArray::I8(c.take(len, what)?.iter().map(|&b| b as i8).collect()),
        t::BOOL => MetadataArray::Bool(collect(len, reserve, || read_bool(c))?),
        t::U16 => MetadataArray::U16(collect(len, reserve, || c.u16(what))?),
        t::I16 => MetadataArray::I16(collect(len, reserve, || Ok(c.u16(what)? as i16))?),
        t::U32 => MetadataArray::U32(collect(len, reserve, || c.u32(what))?),
        t::I32 => MetadataArray::I32(collect(len, reserve, || Ok(c.u32(what)? as i32))?),
        t::F32 => MetadataArray::F32(collect(len, reserve, || Ok(f32::from_bits(c.u32(what)?)))?),
        t::U64 => MetadataArray::U64(collect(len, reserve, || c.u64(what))?),
        t::I64 => MetadataArray::I64(collect(len, reserve, || Ok(c.u64(what)? as i64))?),
        t::F64 => MetadataArray::F64(collect(len, reserve, || Ok(f64::from_bits(c.u64(what)?)))?),
        t::STRING => MetadataArray::String(collect(len, reserve, || {
            c.string(limits.max_string_bytes, "array string")
        })?),
        _ => MetadataArray::Array(collect(len, reserve, || read_array(c, limits, depth + 1))?),
    })
}

fn read_tensor_info(
    c: &mut Cursor<'_>,
    limits: &Limits,
    alignment: u64,
) -> Result<TensorInfo, Stop> {
    let offset = c.offset();
    let name = c.string(limits.max_string_bytes.min(1 << 16), "tensor name")?;
    let n_dims = c.u32("tensor dimension count")?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadShape {
            offset,
            name,
            reason: format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
        }
        .into());
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        shape.push(c.u64("tensor dimension")?);
    }
    let type_id = c.u32("tensor type")?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        offset,
        name: name.clone(),
        type_id,
    })?;
    let data_offset = c.u64("tensor data offset")?;

    let bad_shape = |reason: String| GgufError::BadShape {
        offset,
        name: name.clone(),
        reason,
    };
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| bad_shape(format!("{shape:?} has too many elements")))?;
    let row_bytes = ggml_type.row_bytes(shape[0]).ok_or_else(|| {
        bad_shape(format!(
            "{shape:?}: innermost dimension is not a multiple of {} ({ggml_type} block size)",
            ggml_type.block_size()
        ))
    })?;
    // An empty innermost dimension makes an empty tensor: no rows.
    let rows = elements.checked_div(shape[0]).unwrap_or(0);
    let bytes = row_bytes
        .checked_mul(rows)
        .ok_or_else(|| bad_shape(format!("{shape:?} is too large in bytes")))?;
    if data_offset % alignment != 0 {
        return Err(GgufError::Misaligned {
            name,
            offset: data_offset,
            alignment,
        }
        .into());
    }
    // Sizes stay below 2^63 as in ggml, so absolute offsets computed later cannot overflow.
    if data_offset
        .checked_add(bytes)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(GgufError::TensorOutOfFile {
            name,
            offset: data_offset,
            bytes,
            file_len: u64::MAX,
        }
        .into());
    }
    Ok(TensorInfo {
        name,
        ggml_type,
        shape,
        offset: data_offset,
        bytes,
    })
}

fn check_no_overlap(tensors: &[TensorInfo]) -> Result<(), GgufError> {
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.bytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.offset + a.bytes > b.offset {
            return Err(GgufError::TensorOverlap {
                first: a.name.clone(),
                second: b.name.clone(),
                offset: b.offset,
            });
        }
    }
    Ok(())
}
