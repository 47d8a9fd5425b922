//! GGUF metadata values: the typed key/value store at the head of every GGUF file.

use std::collections::btree_map::{BTreeMap, Entry};

use serde_json::{json, Value as Json};

/// On-disk metadata value type ids.
pub(crate) mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(MetadataArray),
}

/// A homogeneous metadata array. Elements are stored unboxed so that memory stays
/// proportional to the bytes read (a vocabulary is an array of 150 000+ strings).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    Array(Vec<MetadataArray>),
}

impl MetadataValue {
    /// The GGUF spelling of the value's type, for error messages and `inspect`.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataValue::U8(_) => "u8",
            MetadataValue::I8(_) => "i8",
            MetadataValue::U16(_) => "u16",
            MetadataValue::I16(_) => "i16",
            MetadataValue::U32(_) => "u32",
            MetadataValue::I32(_) => "i32",
            MetadataValue::F32(_) => "f32",
            MetadataValue::Bool(_) => "bool",
            MetadataValue::String(_) => "string",
            MetadataValue::U64(_) => "u64",
            MetadataValue::I64(_) => "i64",
            MetadataValue::F64(_) => "f64",
            MetadataValue::Array(_) => "array",
        }
    }

    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetadataValue::U8(v) => Some(v.into()),
            MetadataValue::U16(v) => Some(v.into()),
            MetadataValue::U32(v) => Some(v.into()),
            MetadataValue::U64(v) => Some(v),
            MetadataValue::I8(v) => u64::try_from(v).ok(),
            MetadataValue::I16(v) => u64::try_from(v).ok(),
            MetadataValue::I32(v) => u64::try_from(v).ok(),
            MetadataValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, when it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            MetadataValue::I8(v) => Some(v.into()),
            MetadataValue::I16(v) => Some(v.into()),
            MetadataValue::I32(v) => Some(v.into()),
            MetadataValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            MetadataValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// JSON form; arrays longer than `max_array` elements (when given) are summarised as
    /// `{"type": "array", "element_type": …, "len": …, "head": [first few]}`.
    pub fn to_json(&self, max_array: Option<usize>) -> Json {
        match self {
            MetadataValue::U8(v) => json!(v),
            MetadataValue::I8(v) => json!(v),
            MetadataValue::U16(v) => json!(v),
            MetadataValue::I16(v) => json!(v),
            MetadataValue::U32(v) => json!(v),
            MetadataValue::I32(v) => json!(v),
            MetadataValue::F32(v) => float_json(f64::from(*v)),
            MetadataValue::Bool(v) => json!(v),
            MetadataValue::String(v) => json!(v),
            MetadataValue::U64(v) => json!(v),
            MetadataValue::I64(v) => json!(v),
            MetadataValue::F64(v) => float_json(*v),
            MetadataValue::Array(a) => a.to_json(max_array),
        }
    }
}

/// JSON has no NaN or infinity; those are written as strings so nothing is lost silently.
fn float_json(v: f64) -> Json {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

/// How many leading elements a summarised array shows.
const SUMMARY_HEAD: usize = 8;

impl MetadataArray {
    pub fn len(&self) -> usize {
        match self {
            MetadataArray::U8(v) => v.len(),
            MetadataArray::I8(v) => v.len(),
            MetadataArray::U16(v) => v.len(),
            MetadataArray::I16(v) => v.len(),
            MetadataArray::U32(v) => v.len(),
            MetadataArray::I32(v) => v.len(),
            MetadataArray::F32(v) => v.len(),
            MetadataArray::Bool(v) => v.len(),
            MetadataArray::String(v) => v.len(),
            MetadataArray::U64(v) => v.len(),
            MetadataArray::I64(v) => v.len(),
            MetadataArray::F64(v) => v.len(),
            MetadataArray::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type_name(&self) -> &'static str {
        match self {
            MetadataArray::U8(_) => "u8",
            MetadataArray::I8(_) => "i8",
            MetadataArray::U16(_) => "u16",
            MetadataArray::I16(_) => "i16",
            MetadataArray::U32(_) => "u32",
            MetadataArray::I32(_) => "i32",
            MetadataArray::F32(_) => "f32",
            MetadataArray::Bool(_) => "bool",
            MetadataArray::String(_) => "string",
            MetadataArray::U64(_) => "u64",
            MetadataArray::I64(_) => "i64",
            MetadataArray::F64(_) => "f64",
            MetadataArray::Array(_) => "array",
        }
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetadataArray::String(v) => Some(v),
            _ => None,
        }
    }

    fn elements_json(&self, range: std::ops::Range<usize>, max_array: Option<usize>) -> Vec<Json> {
        fn each<T: Clone + Into<Json>>(v: &[T], r: std::ops::Range<usize>) -> Vec<Json> {
            v[r].iter().cloned().map(Into::into).collect()
        }
        match self {
            MetadataArray::U8(v) => each(v, range),
            MetadataArray::I8(v) => each(v, range),
            MetadataArray::U16(v) => each(v, range),
            MetadataArray::I16(v) => each(v, range),
            MetadataArray::U32(v) => each(v, range),
            MetadataArray::I32(v) => each(v, range),
            MetadataArray::F32(v) => v[range].iter().map(|&x| float_json(x.into())).collect(),
            MetadataArray::Bool(v) => each(v, range),
            MetadataArray::String(v) => each(v, range),
            MetadataArray::U64(v) => each(v, range),
            MetadataArray::I64(v) => each(v, range),
            MetadataArray::F64(v) => v[range].iter().map(|&x| float_json(x)).collect(),
            MetadataArray::Array(v) => v[range].iter().map(|a| a.to_json(max_array)).collect(),
        }
    }

    pub fn to_json(&self, max_array: Option<usize>) -> Json {
        let len = self.len();
        match max_array {
            Some(max) if len > max => json!({
                "type": "array",
                "element_type": self.element_type_name(),
                "len": len,
                "head": self.elements_json(0..SUMMARY_HEAD.min(len), max_array),
            }),
            _ => Json::Array(self.elements_json(0..len, max_array)),
        }
    }
}

/// The metadata of one GGUF file, in file order, with an index by key.
///
/// The index makes the duplicate check while parsing and every lookup logarithmic: a linear
/// search per key made a header of 65,536 keys take 18.6 s to parse. It is a B-tree rather than
/// a hash map because std's hash maps have fixed, public hash keys on wasm32-unknown-unknown (no
/// randomness source), so a crafted file could make every key collide; a B-tree has no bad input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetadataValue)>,
    /// Position in `entries` of each key.
    index: BTreeMap<String, usize>,
}

impl Metadata {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Metadata {
            entries: Vec::with_capacity(n),
            index: BTreeMap::new(),
        }
    }

    /// Appends an entry, or gives the key back when it is already present.
    pub(crate) fn push(&mut self, key: String, value: MetadataValue) -> Result<(), String> {
        match self.index.entry(key) {
            Entry::Occupied(entry) => Err(entry.key().clone()),
            Entry::Vacant(entry) => {
                let key = entry.key().clone();
                entry.insert(self.entries.len());
                self.entries.push((key, value));
                Ok(())
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// JSON object of all entries (see [`MetadataValue::to_json`] for `max_array`).
    pub fn to_json(&self, max_array: Option<usize>) -> Json {
        Json::Object(
            self.entries
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json(max_array)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_views_reject_negative_and_non_integers() {
        assert_eq!(MetadataValue::I32(-1).as_u64(), None);
        assert_eq!(MetadataValue::I32(24).as_u64(), Some(24));
        assert_eq!(MetadataValue::F32(1.5).as_u64(), None);
        assert_eq!(MetadataValue::U16(7).as_f64(), Some(7.0));
        assert_eq!(MetadataValue::String("x".into()).as_f64(), None);
    }

    #[test]
    fn long_arrays_are_summarised() {
        let a = MetadataArray::I32((0..100).collect());
        let j = a.to_json(Some(16));
        assert_eq!(j["len"], 100);
        assert_eq!(j["element_type"], "i32");
        assert_eq!(j["head"].as_array().map(Vec::len), Some(SUMMARY_HEAD));
        assert_eq!(a.to_json(None).as_array().map(Vec::len), Some(100));
        let nested = MetadataArray::Array(vec![MetadataArray::F32(vec![f32::NAN, 1.0])]);
        assert_eq!(nested.to_json(None), json!([["NaN", 1.0]]));
    }
}
