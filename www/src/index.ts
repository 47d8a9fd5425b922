// The package's public API: the engine (in the page or in a worker), the model cache's
// management functions, the error classes, and the public types.

export { createEngine } from './engine.js';
export { createWorkerEngine } from './worker-engine.js';
export { serveEngineInWorker } from './worker.js';
export {
  clearModelCache,
  deleteCachedModel,
  listCachedModels,
  requestPersistentStorage,
  type CachedModelInfo,
} from './model-cache.js';
export {
  AbortedError,
  BadModelError,
  ContextOverflowError,
  DeviceLostError,
  DownloadFailedError,
  IntegrityError,
  InternalError,
  InvalidRequestError,
  QuotaExceededError,
  QwenWebGpuError,
  WebGpuUnavailableError,
  type ErrorCode,
} from './errors.js';
export type {
  AssistantToolCall,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionRequestBase,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  ChatMessage,
  CompletionUsage,
  Engine,
  EngineOptions,
  FinishReason,
  LoadProgress,
  ResponseFormat,
  RuntimeStats,
  TextContentPart,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from './types.js';
