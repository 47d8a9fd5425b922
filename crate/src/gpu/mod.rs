//! The GPU device: adapter and limits, buffer helpers, asynchronous read-back, and what a
//! kernel is to the host ([`Kernel`], its bindings, uniforms, WGSL composition and pipeline
//! cache). Everything above it speaks in buffers and dispatches.

mod kernel;

use std::sync::{Arc, Mutex};

pub use kernel::{
    Access, Binding, BindingSet, Extent, Grid, Kernel, Module, Pipeline, Pipelines, Snippet,
    UniformStruct, MAX_WORKGROUPS_PER_DIMENSION,
};

/// Why the GPU could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error("no WebGPU/Vulkan/Metal/DX12 adapter is available{0}")]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    Device(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the GPU rejected an operation: {0}")]
    Rejected(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("the adapter allows buffers of at most {limit} bytes; {what} needs {needed}")]
    TooLarge {
        what: String,
        needed: u64,
        limit: u64,
    },
}

/// Choices a caller (or a test) can force; the defaults use what the adapter offers.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Cap on one storage binding, below the adapter's own (tests force row splitting with it).
    pub max_binding_bytes: Option<u64>,
    /// Use the kernels that need no subgroup operations even where the adapter has them (many
    /// phones lack them; tests force this path on adapters that have them).
    pub disable_subgroups: bool,
    /// Rely on subgroups of at most this many invocations (tests run SwiftShader's 4-lane
    /// reductions on lavapipe's 8-lane subgroups with it).
    pub subgroup_size_cap: Option<u32>,
    /// Use the kernels for hardware GPUs even on a software adapter (tests run them on
    /// lavapipe with it).
    pub treat_as_hardware: bool,
    /// Keep the KV cache in f32 even where the adapter has shader-f16 (Chromium's SwiftShader
    /// has none; tests force this path on adapters that have it).
    pub disable_f16: bool,
}

/// An open device with the limits this crate works within.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    /// Largest storage buffer binding, in bytes (a multiple of 4).
    pub max_binding_bytes: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_bytes: u64,
    /// The smallest subgroup the adapter runs, where kernels may use subgroup operations (the
    /// adapter has them, with subgroups of 4 or more invocations, and they were not
    /// disabled); `None` otherwise.
    pub subgroup_min_size: Option<u32>,
    /// Kernels may use f16 arithmetic and storage (shader-f16, not disabled).
    pub f16: bool,
    /// The adapter is a CPU rasterizer (lavapipe, SwiftShader; not overridden by
    /// `treat_as_hardware`): it runs a workgroup's invocations as the SIMD lanes of a CPU
    /// thread, and kernels pick their software variants.
    pub software: bool,
    /// Set once by the device-lost callback or the first uncaptured GPU error.
    failure: Arc<Mutex<Option<GpuError>>>,
}

impl GpuContext {
    /// Opens the best available adapter, asking for the largest buffers it allows.
    pub async fn new(options: &GpuOptions) -> Result<GpuContext, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(format!(": {e}")))?;
        let adapter_limits = adapter.limits();
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: adapter_limits.max_storage_buffer_binding_size,
            max_buffer_size: adapter_limits.max_buffer_size,
            max_storage_buffers_per_shader_stage: adapter_limits
                .max_storage_buffers_per_shader_stage
                .max(8),
            max_compute_workgroup_storage_size: adapter_limits.max_compute_workgroup_storage_size,
            ..wgpu::Limits::downlevel_defaults()
        };
        let info = adapter.get_info();
        let subgroup_min_size = (!options.disable_subgroups
            && adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size >= 4)
            .then_some(
                options
                    .subgroup_size_cap
                    .map_or(info.subgroup_min_size, |cap| {
                        cap.min(info.subgroup_min_size)
                    }),
            );
        let f16 = !options.disable_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
        let software = info.device_type == wgpu::DeviceType::Cpu && !options.treat_as_hardware;
        let mut required_features = wgpu::Features::empty();
        if subgroup_min_size.is_some() {
            required_features |= wgpu::Features::SUBGROUP;
        }
        if f16 {
            required_features |= wgpu::Features::SHADER_F16;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("qwen-webgpu"),
                required_features,
                required_limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;

        // wgpu's default handler panics on a GPU error; errors become values here instead.
        let failure: Arc<Mutex<Option<GpuError>>> = Arc::new(Mutex::new(None));
        let slot = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = slot.lock() {
                slot.get_or_insert(GpuError::DeviceLost(format!("{reason:?}: {message}")));
            }
        });
        let slot = failure.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if let Ok(mut slot) = slot.lock() {
                slot.get_or_insert(GpuError::Rejected(error.to_string()));
            }
        }));

        let adapter_binding = adapter_limits.max_storage_buffer_binding_size;
        let max_binding_bytes = options
            .max_binding_bytes
            .map_or(adapter_binding, |cap| cap.min(adapter_binding))
            & !3;
        Ok(GpuContext {
            device,
            queue,
            adapter_info: info,
            max_binding_bytes,
            max_buffer_bytes: adapter_limits.max_buffer_size,
            subgroup_min_size,
            f16,
            software,
            failure,
        })
    }

    /// `Err` once the device has been lost (driver reset, GPU removed, tab hidden too long on
    /// some platforms) or has rejected an operation; the context is unusable from then on.
    pub fn check_lost(&self) -> Result<(), GpuError> {
        match self.failure.lock().ok().and_then(|slot| slot.clone()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// A storage buffer of `bytes` (rounded up to 4), checked against the binding limit.
    pub fn storage_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        let size = bytes.max(4).next_multiple_of(4);
        if size > self.max_binding_bytes {
            return Err(GpuError::TooLarge {
                what: label.into(),
                needed: size,
                limit: self.max_binding_bytes,
            });
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: std::mem::size_of::<T>().next_multiple_of(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue
            .write_buffer(&buffer, 0, bytemuck::bytes_of(value));
        buffer
    }

    /// A buffer the CPU can map to read results, `bytes` long (rounded up to 4).
    pub fn staging_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Reads the first `bytes` bytes of `staging` (see [`staging_buffer`]) once the queue has
    /// executed everything submitted so far, including the copy into it.
    ///
    /// [`staging_buffer`]: GpuContext::staging_buffer
    pub async fn read_staging(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let size = bytes.next_multiple_of(4);
        let (sender, receiver) = futures_channel::oneshot::channel();
        let slice = staging.slice(..size);
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        self.wait_for_queue()?;
        receiver
            .await
            .map_err(|_| GpuError::Readback("the mapping callback was dropped".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        self.check_lost()?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?[..bytes as usize]
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Hands the buffer writes queued so far to the GPU and, natively, waits for them:
    /// `queue.write_buffer` keeps each write's bytes in staging memory until a submission
    /// carries them, so a model streamed in without submissions would sit in memory twice.
    pub fn flush_writes(&self) -> Result<(), GpuError> {
        self.queue.submit([]);
        self.wait_for_queue()
    }

    /// Resolves once the GPU has executed everything submitted so far.
    pub async fn wait_idle(&self) -> Result<(), GpuError> {
        let (sender, receiver) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        self.wait_for_queue()?;
        receiver
            .await
            .map_err(|_| GpuError::Readback("the queue callback was dropped".into()))?;
        self.check_lost()
    }

    /// Drives the queue to completion where the platform lets us block (native); in the
    /// browser, callbacks fire from the event loop and this returns at once.
    fn wait_for_queue(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    /// "llvmpipe (Vulkan)" and the like, for benchmarks and logs.
    pub fn adapter_description(&self) -> String {
        format!(
            "{} ({:?})",
            self.adapter_info.name, self.adapter_info.backend
        )
    }
}
