//! ggml tensor element types: their on-disk ids, names and block geometry.

use std::fmt;

/// A ggml tensor type as stored in a GGUF tensor info; the discriminant is ggml's id.
///
/// Every type ggml has ever written to GGUF files is named here so that sizes and offsets are
/// right for any file, even when this crate cannot compute with a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2K = 10,
    Q3K = 11,
    Q4K = 12,
    Q5K = 13,
    Q6K = 14,
    Q8K = 15,
    Iq2Xxs = 16,
    Iq2Xs = 17,
    Iq3Xxs = 18,
    Iq1S = 19,
    Iq4Nl = 20,
    Iq3S = 21,
    Iq2S = 22,
    Iq4Xs = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    Iq1M = 29,
    Bf16 = 30,
    Tq1_0 = 34,
    Tq2_0 = 35,
    Mxfp4 = 39,
    Nvfp4 = 40,
    Q1_0 = 41,
}

const ALL: [GgmlType; 34] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Q8K,
    GgmlType::Iq2Xxs,
    GgmlType::Iq2Xs,
    GgmlType::Iq3Xxs,
    GgmlType::Iq1S,
    GgmlType::Iq4Nl,
    GgmlType::Iq3S,
    GgmlType::Iq2S,
    GgmlType::Iq4Xs,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::F64,
    GgmlType::Iq1M,
    GgmlType::Bf16,
    GgmlType::Tq1_0,
    GgmlType::Tq2_0,
    GgmlType::Mxfp4,
    GgmlType::Nvfp4,
    GgmlType::Q1_0,
];

impl GgmlType {
    /// All named types, in ggml id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        ALL.into_iter()
    }

    /// The type with ggml id `id`, if ggml defines one.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL.into_iter().find(|t| t.id() == id)
    }

    /// The type spelled `name` the way ggml spells it (`Q4_K`, `F32`, …).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    /// (ggml name, elements per block, bytes per block)
    fn geometry(self) -> (&'static str, u64, u64) {
        match self {
            GgmlType::F32 => ("F32", 1, 4),
            GgmlType::F16 => ("F16", 1, 2),
            GgmlType::Q4_0 => ("Q4_0", 32, 18),
            GgmlType::Q4_1 => ("Q4_1", 32, 20),
            GgmlType::Q5_0 => ("Q5_0", 32, 22),
            GgmlType::Q5_1 => ("Q5_1", 32, 24),
            GgmlType::Q8_0 => ("Q8_0", 32, 34),
            GgmlType::Q8_1 => ("Q8_1", 32, 36),
            GgmlType::Q2K => ("Q2_K", 256, 84),
            GgmlType::Q3K => ("Q3_K", 256, 110),
            GgmlType::Q4K => ("Q4_K", 256, 144),
            GgmlType::Q5K => ("Q5_K", 256, 176),
            GgmlType::Q6K => ("Q6_K", 256, 210),
            GgmlType::Q8K => ("Q8_K", 256, 292),
            GgmlType::Iq2Xxs => ("IQ2_XXS", 256, 66),
            GgmlType::Iq2Xs => ("IQ2_XS", 256, 74),
            GgmlType::Iq3Xxs => ("IQ3_XXS", 256, 98),
            GgmlType::Iq1S => ("IQ1_S", 256, 50),
            GgmlType::Iq4Nl => ("IQ4_NL", 32, 18),
            GgmlType::Iq3S => ("IQ3_S", 256, 110),
            GgmlType::Iq2S => ("IQ2_S", 256, 82),
            GgmlType::Iq4Xs => ("IQ4_XS", 256, 136),
            GgmlType::I8 => ("I8", 1, 1),
            GgmlType::I16 => ("I16", 1, 2),
            GgmlType::I32 => ("I32", 1, 4),
            GgmlType::I64 => ("I64", 1, 8),
            GgmlType::F64 => ("F64", 1, 8),
            GgmlType::Iq1M => ("IQ1_M", 256, 56),
            GgmlType::Bf16 => ("BF16", 1, 2),
            GgmlType::Tq1_0 => ("TQ1_0", 256, 54),
            GgmlType::Tq2_0 => ("TQ2_0", 256, 66),
            GgmlType::Mxfp4 => ("MXFP4", 32, 17),
            GgmlType::Nvfp4 => ("NVFP4", 64, 36),
            GgmlType::Q1_0 => ("Q1_0", 128, 18),
        }
    }

    /// ggml's own spelling, as printed by llama.cpp and the `gguf` Python package.
    pub fn name(self) -> &'static str {
        self.geometry().0
    }

    /// Elements per quantization block (1 for plain scalar types).
    pub fn block_size(self) -> u64 {
        self.geometry().1
    }

    /// Bytes per quantization block.
    pub fn block_bytes(self) -> u64 {
        self.geometry().2
    }

    /// Bytes taken by one row of `elements` values, or `None` when `elements` is not a whole
    /// number of blocks or the size overflows.
    pub fn row_bytes(self, elements: u64) -> Option<u64> {
        if elements % self.block_size() != 0 {
            return None;
        }
        (elements / self.block_size()).checked_mul(self.block_bytes())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for t in GgmlType::all() {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), None, "Q4_2 was removed from ggml");
        assert_eq!(GgmlType::from_id(u32::MAX), None);
    }

    #[test]
    fn row_bytes_needs_whole_blocks() {
        assert_eq!(GgmlType::Q4K.row_bytes(4864), Some(19 * 144));
        assert_eq!(GgmlType::Q4K.row_bytes(896), None);
        assert_eq!(GgmlType::Q5_0.row_bytes(896), Some(28 * 22));
        assert_eq!(GgmlType::F32.row_bytes(u64::MAX), None);
    }
}
