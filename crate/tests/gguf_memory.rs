//! Hostile GGUF headers cost bounded memory: the peak heap use while parsing is measured with a
//! counting allocator (its own test binary, one test, so nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use qwen_webgpu::gguf::{parse_header, Limits};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn header(tensors: u64, metadata: u64, entry: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF\x03\0\0\0".to_vec();
    out.extend_from_slice(&tensors.to_le_bytes());
    out.extend_from_slice(&metadata.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.push(b'k');
    out.extend_from_slice(entry);
    out
}

fn array(elem_type: u32, len: u64) -> Vec<u8> {
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&elem_type.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v
}

#[test]
fn hostile_headers_allocate_little() {
    let mut string = 8u32.to_le_bytes().to_vec();
    string.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let inputs = [
        header(u64::MAX, 1, &string),
        header(1 << 15, 1 << 15, &array(8, 1 << 23)),
        header(0, 1, &array(12, 1 << 24)),
        header(0, 1, &array(0, u64::MAX)),
        header(0, 1, &array(9, 1 << 22)),
        header(1 << 16, 0, &[]),
    ];
    let limits = Limits::default();
    for (i, bytes) in inputs.iter().enumerate() {
        for file_len in [Some(bytes.len() as u64), Some(1 << 34), None] {
            let before = LIVE.load(Ordering::SeqCst);
            PEAK.store(before, Ordering::SeqCst);
            let result = parse_header(bytes, file_len, &limits);
            let peak = PEAK.load(Ordering::SeqCst) - before;
            assert!(
                peak < 64 * 1024,
                "input {i} with length {file_len:?} peaked at {peak} bytes: {result:?}"
            );
            drop(result);
        }
    }
}
