// The Model and Storage panels: owns the model picker, the engine's lifecycle (a module worker
// per loaded model, created with createWorkerEngine; cancelling a load; unloading before the
// next), the load progress (bytes, speed, time left, tensors on the GPU) and the cache manager
// over the engine's IndexedDB model cache. Emits 'loaded' and 'unloaded'.

import {
  clearModelCache,
  createWorkerEngine,
  deleteCachedModel,
  listCachedModels,
  requestPersistentStorage,
} from '../dist/index.js';
import { h } from './dom.js';
import { explainError } from './error-text.js';
import { RateMeter, formatBytes, formatDuration, formatNumber } from './format.js';
import { fileName, findModel, modelCatalog } from './models.js';

const PHASE_LABELS = {
  download: 'Downloading',
  'cache-read': 'Reading from browser storage',
  upload: 'Moving the weights to the GPU',
};

export class ModelPanel extends EventTarget {
  constructor(root = document) {
    super();
    const $ = (id) => root.getElementById(id);
    this.select = $('model-select');
    this.detail = $('model-detail');
    this.contextSelect = $('context-select');
    this.loadButton = $('load-button');
    this.cancelButton = $('cancel-load');
    this.progress = $('load-progress');
    this.phase = $('progress-phase');
    this.percent = $('progress-percent');
    this.fill = $('progress-fill');
    this.bar = this.progress.querySelector('.bar');
    this.progressDetail = $('progress-detail');
    this.progressGpu = $('progress-gpu');
    this.status = $('model-status');
    this.cacheList = $('cache-list');
    this.storageUsage = $('storage-usage');
    this.storageState = $('storage-state');
    this.persistButton = $('persist-storage');
    this.clearButton = $('clear-cache');

    /** The loaded engine and what it runs: `{engine, worker, model, stats}`; null when none. */
    this.current = null;
    this.loading = null;
    this.webgpuReady = false;

    const { groups, selected } = modelCatalog(location);
    this.groups = groups;
    for (const group of groups) {
      const optgroup = h('optgroup', { label: group.label });
      for (const model of group.models) optgroup.append(h('option', { value: model.id }, model.label));
      this.select.append(optgroup);
    }
    this.select.value = selected.id;
    this.showDetail();
    this.select.addEventListener('change', () => this.showDetail());
    this.contextSelect.addEventListener('change', () => this.showDetail());
    this.loadButton.addEventListener('click', () => this.load());
    this.cancelButton.addEventListener('click', () => this.loading?.controller.abort());
    this.persistButton.addEventListener('click', () => this.persist());
    this.clearButton.addEventListener('click', () => this.clearCache());
  }

  get selectedModel() {
    return this.groups.flatMap((group) => group.models).find((model) => model.id === this.select.value);
  }

  /** Called once the WebGPU check passed; until then loading stays disabled. */
  enable() {
    this.webgpuReady = true;
    this.loadButton.disabled = false;
  }

  showDetail() {
    const model = this.selectedModel;
    const loadedHere = this.current?.model === model && this.current.contextLength === Number(this.contextSelect.value);
    this.detail.textContent = model.detail;
    this.loadButton.textContent = loadedHere ? 'Loaded' : this.current ? 'Switch to this model' : 'Load model';
    this.loadButton.classList.toggle('loaded', loadedHere);
    this.loadButton.disabled = !this.webgpuReady || loadedHere || this.loading !== null;
  }

  async load() {
    const model = this.selectedModel;
    const contextLength = Number(this.contextSelect.value);
    const controller = new AbortController();
    this.loading = { controller };
    this.loadButton.disabled = true;
    this.select.disabled = true;
    this.contextSelect.disabled = true;
    this.cancelButton.hidden = false;
    this.setStatus('loading');
    this.startProgress();
    let worker = null;
    try {
      // One model at a time: the previous one's GPU memory is released first.
      await this.unload();
      worker = new Worker(new URL('./engine-worker.js', import.meta.url), { type: 'module' });
      const engine = await createWorkerEngine(worker, {
        model: model.urls,
        contextLength,
        signal: controller.signal,
        onProgress: (progress) => this.onProgress(progress),
      });
      const stats = await engine.runtimeStats();
      this.current = { engine, worker, model, contextLength, stats };
      this.setStatus('ready', h('strong', {}, model.label),
        h('span', {}, ` is ready · ${formatNumber(stats.contextLength)}-token context`),
        h('span', { class: 'adapter' }, `${stats.f16 ? 'f16' : 'f32'} KV cache${stats.subgroups ? ' · subgroup kernels' : ''}`));
      this.dispatchEvent(new CustomEvent('loaded', { detail: this.current }));
    } catch (error) {
      worker?.terminate();
      const { summary, detail, code } = explainError(error);
      this.setStatus(code === 'aborted' ? 'idle' : 'error',
        h('strong', {}, code === 'aborted' ? 'Loading cancelled.' : summary),
        code === 'aborted' ? h('span', {}, ' What was downloaded is kept and resumes next time.') : h('span', { class: 'detail' }, detail));
    } finally {
      this.loading = null;
      this.progress.hidden = true;
      this.cancelButton.hidden = true;
      this.select.disabled = false;
      this.contextSelect.disabled = false;
      this.showDetail();
      await this.refreshCache();
    }
  }

  /** Releases the current model's GPU memory and its worker. */
  async unload() {
    const current = this.current;
    if (!current) return;
    this.current = null;
    this.dispatchEvent(new CustomEvent('unloaded'));
    try {
      await current.engine.unload();
    } finally {
      current.worker.terminate();
    }
  }

  startProgress() {
    this.meter = new RateMeter();
    this.source = null;
    this.progress.hidden = false;
    this.setBar(0);
    this.phase.textContent = 'Connecting…';
    this.percent.textContent = '';
    this.progressDetail.textContent = '';
    this.progressGpu.textContent = '';
  }

  /**
   * The bar follows the file's bytes (from the network or the cache) and then the last tensors
   * reaching the GPU; the text says where the bytes come from, how fast and how long is left.
   */
  onProgress(progress) {
    if (progress.phase !== 'upload') {
      if (this.source?.phase !== progress.phase) this.meter.reset();
      this.source = progress;
      this.meter.add(progress.bytesDone);
      const fraction = progress.bytesTotal > 0 ? progress.bytesDone / progress.bytesTotal : 0;
      this.setBar(fraction);
      this.phase.textContent = PHASE_LABELS[progress.phase];
      const parts = [`${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`];
      const rate = this.meter.rate();
      if (rate) parts.push(`${formatBytes(rate)}/s`);
      const left = this.meter.secondsLeft(progress.bytesTotal);
      if (left !== null && progress.bytesDone < progress.bytesTotal) parts.push(`${formatDuration(left)} left`);
      this.progressDetail.textContent = parts.join(' · ');
    } else {
      if (this.source && this.source.bytesDone >= this.source.bytesTotal) {
        this.phase.textContent = PHASE_LABELS.upload;
        this.setBar(progress.bytesTotal > 0 ? progress.bytesDone / progress.bytesTotal : 0);
      }
      this.progressGpu.textContent = `On the GPU: ${formatNumber(progress.tensorsDone)} of ${formatNumber(progress.tensorsTotal)} tensors`;
    }
  }

  setBar(fraction) {
    const percent = Math.round(fraction * 100);
    this.fill.style.width = `${(fraction * 100).toFixed(1)}%`;
    this.percent.textContent = `${percent}%`;
    this.bar.setAttribute('aria-valuenow', String(percent));
  }

  setStatus(state, ...children) {
    this.status.dataset.state = state;
    this.status.replaceChildren(...children);
  }

  /** Redraws the cache manager from the engine's cache and the browser's storage estimate. */
  async refreshCache() {
    const models = await listCachedModels();
    this.cacheList.replaceChildren(...models.map((cached) => this.cacheRow(cached)));
    if (models.length === 0) this.cacheList.append(h('li', { class: 'empty' }, 'No models are stored yet.'));
    const total = models.reduce((sum, m) => sum + m.bytes, 0);
    this.storageState.textContent = models.length > 0 ? formatBytes(total) : '';
    this.clearButton.disabled = models.length === 0 || this.loading !== null;
    const estimate = await navigator.storage?.estimate?.();
    const persisted = await navigator.storage?.persisted?.();
    this.storageUsage.textContent = estimate
      ? `This site uses ${formatBytes(estimate.usage ?? 0)} of ${formatBytes(estimate.quota ?? 0)} available.${persisted ? ' Models are kept even when space runs low.' : ''}`
      : '';
    this.persistButton.hidden = persisted === true || !navigator.storage?.persist;
  }

  cacheRow(cached) {
    const model = findModel(this.groups, cached.urls, location.href);
    const name = model?.label ?? fileName(cached.urls[0]);
    const size = cached.complete
      ? formatBytes(cached.totalBytes)
      : `${formatBytes(cached.bytes)} of ${formatBytes(cached.totalBytes)} · partial`;
    const inUse = this.current && this.current.model === model;
    const remove = h('button', { type: 'button', class: 'icon-button danger', title: `Delete ${name} from this browser`, 'aria-label': `Delete ${name}` }, 'Delete');
    remove.disabled = this.loading !== null;
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      await deleteCachedModel(cached.urls);
      await this.refreshCache();
    });
    return h('li', { class: 'cache-row', dataset: { complete: String(cached.complete) } },
      h('div', { class: 'cache-name' }, h('span', {}, name), inUse ? h('span', { class: 'tag' }, 'loaded') : null),
      h('div', { class: 'cache-size' }, size),
      remove);
  }

  async clearCache() {
    this.clearButton.disabled = true;
    await clearModelCache();
    await this.refreshCache();
  }

  async persist() {
    await requestPersistentStorage();
    await this.refreshCache();
  }
}
