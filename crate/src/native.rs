//! Native platform edge: model files on disk (incremental header reads, split shard discovery,
//! tensor reads) and blocking waits on the GPU.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::cpu::CpuEngine;
use crate::engine::{CheckedModel, Engine, EngineError, EngineOptions};
use crate::gguf::{
    parse_header, shard_file_name, GgufError, GgufHeader, GgufModel, HeaderParse, Limits, SplitInfo,
};
use crate::gpu::{GpuContext, GpuOptions};

/// Why a model file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Gguf { path: PathBuf, source: GgufError },
}

/// First read size; headers of real models (vocabulary included) are a few MiB.
const FIRST_READ: u64 = 1 << 20;

/// Reads and parses the header of one GGUF file, reading only as much of it as the header needs.
pub fn read_header(path: &Path) -> Result<GgufHeader, OpenError> {
    let io_err = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let limits = Limits::default();
    let mut prefix = Vec::new();
    let mut want = FIRST_READ.min(file_len);
    loop {
        let have = prefix.len() as u64;
        (&mut file)
            .take(want - have)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        // The file is known in full length, so the parser reports truncation itself; reading
        // exactly `want` bytes keeps the prefix honest if the file shrinks underneath.
        match parse_header(&prefix, Some(file_len), &limits) {
            Ok(HeaderParse::Complete(header)) => return Ok(*header),
            Ok(HeaderParse::NeedBytes(needed)) if (prefix.len() as u64) == want => {
                // Grow geometrically so a large header costs few re-parses.
                want = needed.max(want.saturating_mul(2)).min(file_len);
            }
            Ok(HeaderParse::NeedBytes(_)) => {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while being read",
                )))
            }
            Err(source) => {
                return Err(OpenError::Gguf {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Reads the headers of one GGUF file, or of every shard of a gguf-split set given its first
/// (the others are found beside it by their `-0000N-of-0000M.gguf` names), with their paths.
pub fn read_shard_headers(path: &Path) -> Result<(Vec<GgufHeader>, Vec<PathBuf>), OpenError> {
    let first = read_header(path)?;
    let gguf_err = |source| OpenError::Gguf {
        path: path.to_owned(),
        source,
    };
    let mut paths = vec![path.to_owned()];
    let mut headers = vec![first];
    if let Some(split) = SplitInfo::of(&headers[0]).map_err(gguf_err)? {
        let prefix = shard_prefix(path, split.count).ok_or_else(|| {
            gguf_err(GgufError::BadSplit {
                reason: format!(
                    "the file is shard 1 of {} but is not named like PREFIX-00001-of-{:05}.gguf",
                    split.count, split.count
                ),
            })
        })?;
        for index in 1..split.count {
            let shard = prefix.with_file_name(shard_file_name(
                &prefix.file_name().unwrap_or_default().to_string_lossy(),
                index,
                split.count,
            ));
            headers.push(read_header(&shard)?);
            paths.push(shard);
        }
    }
    Ok((headers, paths))
}

/// Opens a model from one GGUF file, or from the first shard of a gguf-split set.
pub fn open_model(path: &Path) -> Result<(GgufModel, Vec<PathBuf>), OpenError> {
    let (headers, paths) = read_shard_headers(path)?;
    let model = GgufModel::from_shards(headers).map_err(|source| OpenError::Gguf {
        path: path.to_owned(),
        source,
    })?;
    Ok((model, paths))
}

/// `dir/name` for a first shard `dir/name-00001-of-0000N.gguf`.
fn shard_prefix(first: &Path, count: u16) -> Option<PathBuf> {
    let file_name = first.file_name()?.to_str()?;
    let suffix = shard_file_name("", 0, count);
    let stem = file_name.strip_suffix(&suffix)?;
    Some(first.with_file_name(stem))
}

/// Reads `len` bytes at absolute `offset` of a file.
pub fn read_at(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Why a model could not be loaded onto the GPU.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Opens a model file (or split set), checks it, and loads it onto a new GPU context.
pub fn load_engine(
    path: &Path,
    gpu: &GpuOptions,
    options: &EngineOptions,
) -> Result<Engine, LoadError> {
    let (headers, paths) = read_shard_headers(path)?;
    // Everything that can be checked without a GPU is, before the device is opened.
    let checked = CheckedModel::new(headers)?;
    let ctx = pollster::block_on(GpuContext::new(gpu)).map_err(EngineError::from)?;
    // The same streaming path as the browser's: the file in bounded chunks, never a whole tensor.
    let (_, engine) = checked
        .start(ctx, options)?
        .read_all(shard_reader(&paths))?;
    Ok(engine)
}

/// Opens a model file (or split set), checks it, and reads it into memory for the CPU backend
/// with `threads` threads.
pub fn load_cpu_engine(
    path: &Path,
    options: &EngineOptions,
    threads: usize,
) -> Result<Engine, LoadError> {
    let (headers, paths) = read_shard_headers(path)?;
    let checked = CheckedModel::new(headers)?;
    let mut shard_bytes = Vec::with_capacity(paths.len());
    for path in &paths {
        let meta = std::fs::metadata(path).map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
        shard_bytes.push(meta.len());
    }
    let engine = CpuEngine::load(
        checked.model(),
        options,
        threads,
        &shard_bytes,
        shard_reader(&paths),
    )?;
    Ok(Engine::Cpu(engine))
}

/// `read(shard, offset, buf)` over the shard files at `paths`, each opened on first use.
fn shard_reader(paths: &[PathBuf]) -> impl FnMut(usize, u64, &mut [u8]) -> Result<(), String> + '_ {
    let mut files: Vec<Option<File>> = paths.iter().map(|_| None).collect();
    move |shard, offset, buf| {
        let path = &paths[shard];
        let describe = |e: io::Error| format!("{}: {e}", path.display());
        if files[shard].is_none() {
            files[shard] = Some(File::open(path).map_err(describe)?);
        }
        let file = files[shard].as_mut().ok_or("the shard is not open")?;
        file.seek(SeekFrom::Start(offset)).map_err(describe)?;
        file.read_exact(buf).map_err(describe)
    }
}
