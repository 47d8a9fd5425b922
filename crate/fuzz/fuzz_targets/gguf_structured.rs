//! Fuzzes the GGUF header parser with well-formed headers built from a structured description:
//! many metadata keys, long and nested arrays, many tensors and split models, each parsed whole,
//! with the file length unknown, and as a growing stream, then joined with `GgufModel::from_shards`.
//!
//! Byte-level mutation of `gguf_header` inputs rarely gets past the first malformed field, and a
//! few KB cannot hold 65,536 keys. Here "repeat" knobs expand a few input bytes into headers of
//! megabytes, so the slow paths (duplicate detection, array collection, tensor tables) are reached.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use qwen_webgpu::gguf::{parse_header, GgmlType, GgufHeader, GgufModel, HeaderParse, Limits};
use qwen_webgpu::model_config::Qwen2Config;

/// Bytes one generated file may take. Repeats are cut to fit, which keeps an execution in the
/// tens of milliseconds while still passing the default limits on keys and tensors.
const FILE_BUDGET: usize = 4 << 20;
/// Tensors the repeat knobs may expand to, over all shards: a little above `Limits::max_tensors`.
const MAX_TENSORS: usize = (1 << 16) + 16;
/// Nested arrays deeper than this are not repeated, so nesting cannot multiply the output size
/// (the parser rejects nesting past 8 levels anyway).
const MAX_REPEAT_DEPTH: u32 = 10;
/// Re-parses at exactly the requested length before switching to geometric growth: exact
/// requests check that `NeedBytes` is honest, growth bounds the re-parses of large headers.
const MAX_EXACT_STEPS: u32 = 16;

/// Words the parser and the model configuration look for, so that generated headers hit them.
const WORDS: &[&str] = &[
    "general.architecture",
    "general.alignment",
    "general.name",
    "qwen2",
    "qwen2.block_count",
    "qwen2.context_length",
    "qwen2.embedding_length",
    "qwen2.feed_forward_length",
    "qwen2.attention.head_count",
    "qwen2.attention.head_count_kv",
    "qwen2.attention.key_length",
    "qwen2.attention.layer_norm_rms_epsilon",
    "qwen2.rope.freq_base",
    "qwen2.rope.scaling.type",
    "qwen2.rope.scaling.factor",
    "qwen2.rope.scaling.original_context_length",
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.chat_template",
    "split.no",
    "split.count",
    "split.tensors.count",
    "token_embd.weight",
    "output.weight",
    "output_norm.weight",
    "blk.0.attn_q.weight",
    "gpt2",
    "yarn",
    "",
];

#[derive(Arbitrary, Debug)]
struct Input {
    version: Version,
    /// Smaller caps than the defaults, so the limit checks are reached by small headers too.
    limits: Option<SmallLimits>,
    /// `general.alignment = 2^shift` written first into every shard (shifts past 20 are invalid).
    align_shift: Option<u8>,
    /// Counts written in place of the true ones.
    tensor_count: Option<u64>,
    metadata_count: Option<u64>,
    metadata: Vec<Entry>,
    tensors: Vec<Tensor>,
    /// 1 to 4 shards in gguf-split layout: metadata in the first, tensors dealt round-robin.
    split: Option<u8>,
    end: FileEnd,
    /// First prefix length of the streaming parse.
    first_read: u16,
}

#[derive(Arbitrary, Debug)]
enum Version {
    V2,
    V3,
    Other(u32),
}

#[derive(Arbitrary, Debug)]
struct SmallLimits {
    max_tensors: u16,
    max_metadata_entries: u16,
    max_string_bytes: u16,
    max_array_elements: u16,
    max_array_depth: u8,
    max_header_bytes: u32,
}

/// A string: one of [`WORDS`] or any text, repeated `repeat + 1` times.
#[derive(Arbitrary, Debug)]
struct Text {
    word: Word,
    repeat: u8,
}

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Entry {
    One {
        key: Text,
        value: Value,
    },
    /// `count` keys `{key}.{i}` sharing one value: many keys for a few input bytes.
    Many {
        key: Text,
        count: u16,
        value: Value,
    },
}

#[derive(Arbitrary, Debug)]
enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(Text),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Array),
    /// Any type id with any bytes behind it: unknown types, invalid bools, short values.
    Raw {
        type_id: u32,
        bytes: Vec<u8>,
    },
}

/// An array of `elements` repeated `repeat + 1` times.
#[derive(Arbitrary, Debug)]
struct Array {
    elements: Elements,
    repeat: u16,
    /// A length written in place of the true one.
    len: Option<u64>,
}

#[derive(Arbitrary, Debug)]
enum Elements {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<Text>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    /// Inner arrays may each have their own element type, as GGUF allows.
    Array(Vec<Array>),
    /// An element type id the parser does not know.
    Unknown(u32),
}

/// `repeat + 1` tensors named `{name}.{i}` (just `name` without repeats).
#[derive(Arbitrary, Debug)]
struct Tensor {
    name: Text,
    dims: Dims,
    ggml_type: TensorType,
    /// Packed after the previous tensor at the shard's alignment, or the given offset.
    offset: Option<u64>,
    repeat: u16,
}

#[derive(Arbitrary, Debug)]
enum Dims {
    /// Innermost dimension in whole blocks of the tensor type, so that most shapes are valid.
    Blocks(Vec<u8>),
    Any(Vec<u64>),
}

#[derive(Arbitrary, Debug)]
enum TensorType {
    Known(u8),
    Any(u32),
}

/// Where each file ends relative to the end of its last tensor's data.
#[derive(Arbitrary, Debug)]
enum FileEnd {
    Exact,
    Short(u32),
    Long(u32),
    /// The file is cut this many bytes into the header (modulo its length).
    CutHeader(u32),
}

impl Text {
    fn expand(&self) -> String {
        let word = match &self.word {
            Word::Known(i) => WORDS[usize::from(*i) % WORDS.len()],
            Word::Any(s) => s,
        };
        word.repeat(usize::from(self.repeat) + 1)
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends `unit` up to `times` times while `out` stays within `budget`; returns how many.
fn put_repeated(out: &mut Vec<u8>, unit: &[u8], times: usize, budget: usize) -> usize {
    let room = budget.saturating_sub(out.len());
    let n = times.min(room.checked_div(unit.len()).unwrap_or(times));
    for _ in 0..n {
        out.extend_from_slice(unit);
    }
    n
}

/// Appends `value` (type id and payload).
fn put_value(out: &mut Vec<u8>, value: &Value, budget: usize) {
    match value {
        Value::U8(v) => {
            put_u32(out, 0);
            out.push(*v);
        }
        Value::I8(v) => {
            put_u32(out, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::U16(v) => {
            put_u32(out, 2);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::I16(v) => {
            put_u32(out, 3);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::U32(v) => {
            put_u32(out, 4);
            put_u32(out, *v);
        }
        Value::I32(v) => {
            put_u32(out, 5);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::F32(v) => {
            put_u32(out, 6);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bool(v) => {
            put_u32(out, 7);
            out.push(u8::from(*v));
        }
        Value::String(t) => {
            put_u32(out, 8);
            put_str(out, &t.expand());
        }
        Value::Array(a) => {
            put_u32(out, 9);
            put_array(out, a, budget, 0);
        }
        Value::U64(v) => {
            put_u32(out, 10);
            put_u64(out, *v);
        }
        Value::I64(v) => {
            put_u32(out, 11);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::F64(v) => {
            put_u32(out, 12);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Raw { type_id, bytes } => {
            put_u32(out, *type_id);
            out.extend_from_slice(bytes);
        }
    }
}

/// Appends an array's element type, length and elements (everything after the ARRAY type id).
fn put_array(out: &mut Vec<u8>, array: &Array, budget: usize, depth: u32) {
    // One copy of the elements, then as many copies as the repeat knob and the budget allow.
    let mut unit = Vec::new();
    let unit_budget = budget.saturating_sub(out.len() + 12);
    let (type_id, n) = match &array.elements {
        Elements::U8(v) => (0, put_all(&mut unit, v, |o, x| o.push(*x))),
        Elements::I8(v) => (1, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::U16(v) => (2, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::I16(v) => (3, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::U32(v) => (4, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::I32(v) => (5, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::F32(v) => (6, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::Bool(v) => (7, put_all(&mut unit, v, |o, x| o.push(u8::from(*x)))),
        Elements::String(v) => (8, put_all(&mut unit, v, |o, x| put_str(o, &x.expand()))),
        Elements::Array(v) => (
            9,
            put_all(&mut unit, v, |o, x| put_array(o, x, unit_budget, depth + 1)),
        ),
        Elements::U64(v) => (10, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::I64(v) => (11, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::F64(v) => (12, put_all(&mut unit, v, |o, x| o.extend(x.to_le_bytes()))),
        Elements::Unknown(id) => (13u32.saturating_add(*id), 0),
    };
    let times = if depth < MAX_REPEAT_DEPTH {
        usize::from(array.repeat) + 1
    } else {
        1
    };
    put_u32(out, type_id);
    let len_at = out.len();
    put_u64(out, 0);
    let copies = put_repeated(out, &unit, times, budget);
    let len = array.len.unwrap_or((n * copies) as u64);
    out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
}

/// Appends every item with `put`; returns the item count.
fn put_all<T>(out: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) -> usize {
    for item in items {
        put(out, item);
    }
    items.len()
}

/// One tensor info as it will be written.
struct TensorOut {
    name: String,
    shape: Vec<u64>,
    type_id: u32,
    offset: Option<u64>,
}

/// Expands the repeat knobs into at most [`MAX_TENSORS`] tensor infos.
fn expand_tensors(specs: &[Tensor]) -> Vec<TensorOut> {
    let types: Vec<GgmlType> = GgmlType::all().collect();
    let mut out = Vec::new();
    for spec in specs {
        let (type_id, block) = match spec.ggml_type {
            TensorType::Known(i) => {
                let t = types[usize::from(i) % types.len()];
                (t.id(), t.block_size())
            }
            TensorType::Any(id) => (id, 1),
        };
        let shape: Vec<u64> = match &spec.dims {
            Dims::Blocks(d) => d
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if i == 0 {
                        u64::from(x) * block
                    } else {
                        u64::from(x)
                    }
                })
                .collect(),
            Dims::Any(d) => d.clone(),
        };
        let name = spec.name.expand();
        let copies = usize::from(spec.repeat) + 1;
        for i in 0..copies.min(MAX_TENSORS - out.len()) {
            out.push(TensorOut {
                name: if copies == 1 {
                    name.clone()
                } else {
                    format!("{name}.{i}")
                },
                shape: shape.clone(),
                type_id,
                offset: spec.offset,
            });
        }
    }
    out
}

/// Bytes of a tensor's data, where its type and shape are valid.
fn tensor_bytes(t: &TensorOut) -> Option<u64> {
    let ty = GgmlType::from_id(t.type_id)?;
    let inner = *t.shape.first()?;
    let rows = t.shape[1..]
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))?;
    ty.row_bytes(inner)?.checked_mul(rows)
}

/// One generated file: its leading bytes (the header, or part of it) and its full length.
struct File {
    bytes: Vec<u8>,
    len: u64,
}

/// Serializes one shard: metadata entries (expanded), then tensor infos with their offsets.
fn build_file(
    input: &Input,
    entries: &[(String, &Value)],
    many: &[(String, u16, &Value)],
    tensors: &[&TensorOut],
) -> File {
    let alignment = match input.align_shift {
        Some(s) => 1u64 << (s % 24),
        None => 32,
    };
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    put_u32(
        &mut out,
        match input.version {
            Version::V2 => 2,
            Version::V3 => 3,
            Version::Other(v) => v,
        },
    );
    let counts_at = out.len();
    put_u64(&mut out, 0);
    put_u64(&mut out, 0);

    let mut n_metadata = 0u64;
    if input.align_shift.is_some() {
        put_str(&mut out, "general.alignment");
        put_value(&mut out, &Value::U32(alignment as u32), FILE_BUDGET);
        n_metadata += 1;
    }
    for (key, value) in entries {
        put_str(&mut out, key);
        put_value(&mut out, value, FILE_BUDGET);
        n_metadata += 1;
    }
    for (key, count, value) in many {
        let mut unit = Vec::new();
        put_value(&mut unit, value, FILE_BUDGET.saturating_sub(out.len()));
        for i in 0..*count {
            let key = format!("{key}.{i}");
            if out.len() + 8 + key.len() + unit.len() > FILE_BUDGET {
                break;
            }
            put_str(&mut out, &key);
            out.extend_from_slice(&unit);
            n_metadata += 1;
        }
    }

    let mut n_tensors = 0u64;
    let mut next_offset = 0u64;
    let mut data_size = 0u64;
    for t in tensors {
        if out.len() + 64 + t.name.len() + 8 * t.shape.len() > FILE_BUDGET {
            break;
        }
        let bytes = tensor_bytes(t).unwrap_or(0);
        let offset = t.offset.unwrap_or(next_offset);
        if let Some(end) = offset.checked_add(bytes) {
            data_size = data_size.max(end);
            next_offset = end.checked_next_multiple_of(alignment).unwrap_or(end);
        }
        put_str(&mut out, &t.name);
        put_u32(&mut out, t.shape.len() as u32);
        for &d in &t.shape {
            put_u64(&mut out, d);
        }
        put_u32(&mut out, t.type_id);
        put_u64(&mut out, offset);
        n_tensors += 1;
    }

    let tensor_count = input.tensor_count.unwrap_or(n_tensors);
    let metadata_count = input.metadata_count.unwrap_or(n_metadata);
    out[counts_at..counts_at + 8].copy_from_slice(&tensor_count.to_le_bytes());
    out[counts_at + 8..counts_at + 16].copy_from_slice(&metadata_count.to_le_bytes());

    let data_end = (out.len() as u64)
        .next_multiple_of(alignment)
        .saturating_add(data_size);
    let len = match input.end {
        FileEnd::Exact => data_end,
        FileEnd::Short(n) => data_end.saturating_sub(u64::from(n)),
        FileEnd::Long(n) => data_end.saturating_add(u64::from(n)),
        FileEnd::CutHeader(n) => (n as usize % (out.len() + 1)) as u64,
    };
    // The bytes are a prefix of the file: a file shorter than its header ends inside it.
    out.truncate(len.min(out.len() as u64) as usize);
    File { bytes: out, len }
}

/// Treats NaN metadata values as equal to themselves: two parses of the same bytes keep the same
/// float bits, so they agree up to `NaN != NaN`.
fn same<T: PartialEq + std::fmt::Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

/// Parses one file whole, with its length unknown, and as a stream; checks that they agree and
/// returns the header when it is complete.
fn parse_file(file: &File, limits: &Limits, first_read: u16) -> Option<GgufHeader> {
    let bytes = &file.bytes;
    let whole = parse_header(bytes, Some(file.len), limits);
    let unknown_len = parse_header(bytes, None, limits);
    match (&whole, &unknown_len) {
        // Knowing the file length only adds the checks against it.
        (_, Ok(HeaderParse::Complete(h))) => {
            let expected = h
                .check_file_len(file.len)
                .map(|()| HeaderParse::Complete(h.clone()));
            assert!(same(&whole, &expected), "{whole:?} vs {expected:?}");
        }
        // The same bytes in the same order: an error without the length is one with it.
        (_, Err(_)) => assert!(whole.is_err(), "{whole:?} vs {unknown_len:?}"),
        (_, Ok(HeaderParse::NeedBytes(_))) => {}
    }

    // As `native::read_header` and the browser read a header: ask, read, parse again.
    let mut have = (usize::from(first_read) + 1).min(bytes.len());
    let mut steps = 0;
    loop {
        let step = parse_header(&bytes[..have], Some(file.len), limits);
        match step {
            Ok(HeaderParse::NeedBytes(needed)) => {
                assert!(
                    needed > have as u64,
                    "asked for {needed} bytes holding {have}"
                );
                assert!(
                    needed <= file.len,
                    "asked for {needed} bytes of {}",
                    file.len
                );
                if needed > bytes.len() as u64 {
                    assert!(
                        matches!(whole, Ok(HeaderParse::NeedBytes(_))),
                        "a prefix asks for {needed} bytes of {}, the whole gives {whole:?}",
                        bytes.len()
                    );
                    return None;
                }
                steps += 1;
                have = if steps < MAX_EXACT_STEPS {
                    needed as usize
                } else {
                    (needed as usize).max(have * 2).min(bytes.len())
                };
            }
            // A prefix never gives a different header or error than the whole file.
            _ => {
                assert!(
                    same(&step, &whole),
                    "prefix of {have}: {step:?} vs {whole:?}"
                );
                break;
            }
        }
    }

    let header = match whole {
        Ok(HeaderParse::Complete(h)) => *h,
        _ => return None,
    };
    assert!(header.data_end() <= file.len);
    Some(header)
}

fuzz_target!(|input: Input| {
    let limits = match &input.limits {
        None => Limits::default(),
        Some(l) => Limits {
            max_tensors: u64::from(l.max_tensors),
            max_metadata_entries: u64::from(l.max_metadata_entries),
            max_string_bytes: u64::from(l.max_string_bytes),
            max_array_elements: u64::from(l.max_array_elements),
            max_array_depth: u32::from(l.max_array_depth),
            max_header_bytes: u64::from(l.max_header_bytes),
        },
    };
    let tensors = expand_tensors(&input.tensors);
    let shard_count = input.split.map_or(1, |s| usize::from(s % 4) + 1);

    let mut entries: Vec<(String, &Value)> = Vec::new();
    let mut many: Vec<(String, u16, &Value)> = Vec::new();
    for entry in &input.metadata {
        match entry {
            Entry::One { key, value } => entries.push((key.expand(), value)),
            Entry::Many { key, count, value } => many.push((key.expand(), *count, value)),
        }
    }

    let mut headers = Vec::new();
    for shard in 0..shard_count {
        // gguf-split writes u16 shard numbers and an i32 total.
        let split_values = [
            Value::U16(shard as u16),
            Value::U16(shard_count as u16),
            Value::I32(tensors.len() as i32),
        ];
        let mut shard_entries: Vec<(String, &Value)> = Vec::new();
        if input.split.is_some() {
            for (key, value) in ["split.no", "split.count", "split.tensors.count"]
                .into_iter()
                .zip(&split_values)
            {
                shard_entries.push((key.to_owned(), value));
            }
        }
        if shard == 0 {
            shard_entries.extend(entries.iter().cloned());
        }
        let shard_tensors: Vec<&TensorOut> =
            tensors.iter().skip(shard).step_by(shard_count).collect();
        let file = build_file(
            &input,
            &shard_entries,
            if shard == 0 { &many[..] } else { &[] },
            &shard_tensors,
        );
        if let Some(header) = parse_file(&file, &limits, input.first_read) {
            headers.push(header);
        }
    }
    if headers.len() < shard_count {
        return;
    }

    let total: usize = headers.iter().map(|h| h.tensors.len()).sum();
    if let Ok(model) = GgufModel::from_shards(headers) {
        assert_eq!(model.tensors().len(), total);
        for t in model.tensors() {
            assert_eq!(model.tensor(&t.info.name), Some(t));
        }
        let _ = Qwen2Config::from_model(&model);
        let _ = model.inspect_json(Some(16));
    }
});
