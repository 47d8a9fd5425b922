// The package's public API: the engine (in the page or in a worker), WebLLM's API over it, the
// model cache's management functions, the error classes, and the public types.

export { createEngine } from './engine.js';
export { createWorkerEngine } from './worker-engine.js';
export { WebWorkerMLCEngineHandler, serveEngineInWorker } from './worker.js';
export {
  CreateMLCEngine,
  CreateWebWorkerMLCEngine,
  MLCEngine,
  WebWorkerMLCEngine,
  type ChatOptions,
  type InitProgressCallback,
  type InitProgressReport,
  type LogLevel,
  type MLCEngineConfig,
  type MLCEngineInterface,
} from './webllm.js';
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
  AdapterInfo,
  AssistantToolCall,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionContentPartText,
  ChatCompletionFinishReason,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionRequest,
  ChatCompletionRequestBase,
  ChatCompletionRequestNonStreaming,
  ChatCompletionRequestStreaming,
  ChatCompletions,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
  ChatMessage,
  CompletionUsage,
  Engine,
  EngineOptions,
  RopeScaling,
  FinishReason,
  LoadProgress,
  ResponseFormat,
  RuntimeStats,
  StreamOptions,
  TextContentPart,
  ToolCall,
  ToolChoice,
  ToolDefinition,
  UsageExtra,
} from './types.js';
