// The models the picker offers: owns the catalog (Qwen's official Qwen2.5-Instruct Q4_K_M GGUF
// files on Hugging Face, and the test models that scripts/serve-demo exposes on localhost) and
// the `?model=` URL parameter that adds and selects any other GGUF (shards separated by commas).

const HF = 'https://huggingface.co';

function huggingFace(size) {
  const repo = `Qwen/Qwen2.5-${size}-Instruct-GGUF`;
  return (file) => `${HF}/${repo}/resolve/main/${file}`;
}

/** The official Qwen2.5-Instruct models, Q4_K_M (sizes as Hugging Face lists them). */
const OFFICIAL = [
  { id: 'qwen2.5-0.5b', label: 'Qwen2.5 0.5B Instruct', detail: '0.49 GB · fast, basic answers', urls: [huggingFace('0.5B')('qwen2.5-0.5b-instruct-q4_k_m.gguf')] },
  { id: 'qwen2.5-1.5b', label: 'Qwen2.5 1.5B Instruct', detail: '1.12 GB · good balance', urls: [huggingFace('1.5B')('qwen2.5-1.5b-instruct-q4_k_m.gguf')] },
  { id: 'qwen2.5-3b', label: 'Qwen2.5 3B Instruct', detail: '2.10 GB · needs ~3 GB of GPU memory', urls: [huggingFace('3B')('qwen2.5-3b-instruct-q4_k_m.gguf')] },
  {
    id: 'qwen2.5-7b',
    label: 'Qwen2.5 7B Instruct',
    detail: '4.68 GB in 2 files · needs ~6 GB of GPU memory',
    urls: [
      huggingFace('7B')('qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf'),
      huggingFace('7B')('qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf'),
    ],
  },
];

/** What scripts/serve-demo maps under /models/ (the project's test models). */
const LOCAL = [
  { id: 'local-coder', label: 'Qwen2.5-Coder 0.5B Instruct (local)', detail: '0.49 GB', urls: ['/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf'] },
  { id: 'local-tiny', label: 'Tiny test model', detail: '27 MB · replies are random text', urls: ['/models/qwen2-tiny-random.gguf'] },
];

function isLocalhost(hostname) {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}

/** The file name a URL ends in. */
export function fileName(url) {
  const path = new URL(url, 'http://x/').pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

/**
 * The picker's groups and the model to select: `{groups: [{label, models}], selected}`.
 * On localhost the local test models are listed first and the real one (Qwen2.5-Coder 0.5B) is
 * the default, so a developer's page works offline; `?model=URL[,URL…]` selects a listed model or adds it.
 */
export function modelCatalog(location) {
  const groups = [];
  const local = isLocalhost(location.hostname);
  if (local) groups.push({ label: 'On this computer', models: LOCAL });
  groups.push({ label: 'Qwen2.5 Instruct (download from Hugging Face)', models: OFFICIAL });
  let selected = local ? LOCAL[0] : OFFICIAL[0];

  const requested = new URLSearchParams(location.search).get('model');
  if (requested) {
    const urls = requested.split(',').map((url) => url.trim()).filter(Boolean);
    const same = (model) => model.urls.length === urls.length && model.urls.every((url, i) => url === urls[i]);
    selected = groups.flatMap((group) => group.models).find(same) ?? null;
    if (!selected) {
      selected = { id: 'custom', label: fileName(urls[0]), detail: urls.length > 1 ? `${urls.length} files` : 'from the page address', urls };
      groups.unshift({ label: 'From the page address', models: [selected] });
    }
  }
  return { groups, selected };
}

/** The catalog entry whose URLs resolve to `urls` (absolute, as the model cache lists them). */
export function findModel(groups, urls, base) {
  const absolute = (list) => list.map((url) => new URL(url, base).href);
  return groups.flatMap((group) => group.models)
    .find((model) => absolute(model.urls).join('\n') === urls.join('\n')) ?? null;
}
