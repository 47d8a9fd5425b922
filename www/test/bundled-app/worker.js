// The app's whole worker: the package's ready-made worker entry.
import 'qwen-webgpu/worker';
