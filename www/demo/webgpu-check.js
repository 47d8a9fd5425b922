// The WebGPU check run when the page opens: owns deciding whether this browser can run the
// model at all, and naming the GPU it would run on, before anything is downloaded.

/**
 * `{ok: true, name, software}` with the adapter's name (software: a CPU fallback such as
 * SwiftShader, which works but slowly), or `{ok: false, reason}` in plain words.
 */
export async function checkWebGpu() {
  if (!('gpu' in navigator) || !navigator.gpu) {
    return { ok: false, reason: 'This browser does not offer WebGPU.' };
  }
  let adapter;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (error) {
    return { ok: false, reason: `The browser could not open the GPU (${error.message}).` };
  }
  if (!adapter) {
    return { ok: false, reason: 'WebGPU is present, but the browser found no usable GPU: it may be turned off in the browser’s settings or blocked for this graphics driver.' };
  }
  const info = adapter.info ?? {};
  const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'your GPU';
  return { ok: true, name, software: info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${info.vendor} ${info.architecture} ${info.description}`) };
}
