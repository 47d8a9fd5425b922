//! Header parsing, split joining and name lookups take time linear in the header's size, even for
//! hostile headers of tens of thousands of near-identical names. Its own test binary with one test,
//! so the timings do not share the CPU with other tests of the same binary.

mod support;

use std::time::{Duration, Instant};

use qwen_webgpu::gguf::{parse_header, GgmlType, GgufModel, HeaderParse, Limits, MetadataValue};
use support::GgufWriter;

/// Keys are 110 bytes, so an entry (length, key, type, u32 value) is 126 bytes: 65,000 of them
/// make the 8.2 MB of metadata that took 18.6 s to parse with a linear duplicate search.
const KEY_BYTES: usize = 110;
const KEYS: usize = 65_000;

/// A model file of `n` metadata keys and `n` one-row tensors, with the keys and tensor names.
/// Names share all but their last digits, the worst case for comparing them.
struct BigFile {
    bytes: Vec<u8>,
    keys: Vec<String>,
    tensors: Vec<String>,
}

/// How long one round of [`BigFile::parse_and_look_up`] took.
struct Timing {
    parse: Duration,
    total: Duration,
}

impl BigFile {
    fn new(n: usize) -> BigFile {
        let keys: Vec<String> = (0..n)
            .map(|i| format!("{}{i:010}", "k".repeat(KEY_BYTES - 10)))
            .collect();
        let tensors: Vec<String> = (0..n)
            .map(|i| format!("blk.{i:010}.ffn_gate.weight"))
            .collect();
        let mut w = GgufWriter::new();
        w.metadata = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), MetadataValue::U32(i as u32)))
            .collect();
        w.tensors = tensors
            .iter()
            .map(|name| (name.clone(), GgmlType::F32, vec![8]))
            .collect();
        BigFile {
            bytes: w.build(),
            keys,
            tensors,
        }
    }

    /// Parses the file, joins it into a model and looks up every key and tensor by name.
    fn parse_and_look_up(&self, limits: &Limits) -> Timing {
        let start = Instant::now();
        let header = match parse_header(&self.bytes, Some(self.bytes.len() as u64), limits) {
            Ok(HeaderParse::Complete(h)) => *h,
            other => panic!("{other:?}"),
        };
        let parse = start.elapsed();
        let model = GgufModel::from_shards(vec![header]).unwrap();
        for (i, key) in self.keys.iter().enumerate() {
            assert_eq!(
                model.metadata().get(key),
                Some(&MetadataValue::U32(i as u32))
            );
        }
        for (i, name) in self.tensors.iter().enumerate() {
            assert_eq!(
                model.tensor(name).map(|t| t.info.offset),
                Some(32 * i as u64)
            );
        }
        let total = start.elapsed();
        assert_eq!(model.metadata().len(), self.keys.len());
        assert_eq!(model.tensors().len(), self.tensors.len());
        Timing { parse, total }
    }
}

#[test]
fn parse_time_grows_linearly() {
    // Room for twice the default caps of 2^16 keys and tensors.
    let limits = Limits {
        max_tensors: 1 << 18,
        max_metadata_entries: 1 << 18,
        ..Limits::default()
    };
    let small = BigFile::new(KEYS);
    let large = BigFile::new(2 * KEYS);

    // One round first: a quadratic parser or lookup fails here, after one slow round rather
    // than many.
    let first = small.parse_and_look_up(&limits);
    assert!(
        first.total < Duration::from_secs(1),
        "{KEYS} keys and tensors ({} bytes) took {:?}",
        small.bytes.len(),
        first.total
    );
    // The best of at least three interleaved parses of each size, so a busy machine slows both
    // alike; up to ten while the ratio is off, so one noisy run does not fail the test.
    let (mut one, mut two) = (first.parse, Duration::MAX);
    for round in 1..=10 {
        one = one.min(small.parse_and_look_up(&limits).parse);
        two = two.min(large.parse_and_look_up(&limits).parse);
        if round >= 3 && two.as_secs_f64() < 2.5 * one.as_secs_f64() {
            break;
        }
    }
    eprintln!(
        "parse, join and look up {KEYS} keys and tensors ({} bytes): {:?}; parse alone: \
         {one:?}; parse twice as many ({} bytes): {two:?}",
        small.bytes.len(),
        first.total,
        large.bytes.len()
    );
    assert!(one < Duration::from_secs(1), "{KEYS}: {one:?}");
    assert!(
        two.as_secs_f64() < 2.5 * one.as_secs_f64(),
        "parsing twice the names took {two:?}, against {one:?}"
    );
}
