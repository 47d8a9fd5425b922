// Retrieval for the document Q&A: owns the text analysis (CJK-aware terms, token estimates),
// the cutting of documents into passages, and the BM25 index that ranks passages for a
// question. Pure JavaScript with no DOM or network access, so the page, the indexing worker
// and the Node unit tests all import this same module.

/**
 * Scripts written without spaces between words (Chinese, Japanese kana) and Hangul. Their runs
 * are indexed as overlapping character bigrams plus single characters, which needs no
 * dictionary: a question's bigrams meet the document's wherever they share a word.
 */
const CJK_CHAR = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}`;
const CJK_RUN = new RegExp(`[${CJK_CHAR}]`, 'u');
/** A run of CJK characters, or a run of other letters/digits (a word). */
const TERM_RUNS = new RegExp(
  `([${CJK_CHAR}]+)|((?:(?![${CJK_CHAR}])[\\p{L}\\p{N}\\p{M}])+(?:['’](?:(?![${CJK_CHAR}])\\p{L})+)*)`,
  'gu',
);

/** Frequent English words that say nothing about a passage's topic. */
const STOPWORDS = new Set(`
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
`.trim().split(/\s+/));

/**
 * A light English suffix stripper: enough to make "keepers"/"keeper" and "burning"/"burned"/
 * "burn" meet, without a full Porter stemmer's surprises. Questions and passages go through the
 * same function, so an odd stem still matches itself.
 */
export function stem(word) {
  let w = word.replace(/['’]s$/, '');
  if (w.length <= 3 || /\d/.test(w)) return w;
  if (w.endsWith('ies') && w.length > 4) return `${w.slice(0, -3)}y`;
  if (w.endsWith('sses')) return w.slice(0, -2);
  if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith('ing') && w.length > 5) return undouble(w.slice(0, -3));
  if (w.endsWith('ed') && w.length > 4) return undouble(w.slice(0, -2));
  return w;
}

/** "stopp" → "stop" after stripping "-ed"/"-ing" from "stopped"/"stopping". */
function undouble(w) {
  return /([b-df-hj-np-tv-z])\1$/.test(w) && !/(ll|ss|zz)$/.test(w) ? w.slice(0, -1) : w;
}

/**
 * The terms of `text` with their character offsets in it: lower-cased, NFKC-normalised
 * (full-width Latin letters and digits become ASCII) English word stems without stopwords, and
 * for CJK runs every character and every pair of neighbouring characters.
 */
export function analyze(text) {
  const terms = [];
  for (const match of text.matchAll(TERM_RUNS)) {
    const start = match.index;
    if (match[1] !== undefined) {
      const chars = [...match[1]];
      let offset = start;
      for (let i = 0; i < chars.length; i++) {
        const char = chars[i];
        terms.push({ term: char, start: offset, end: offset + char.length });
        if (i + 1 < chars.length) {
          const pair = char + chars[i + 1];
          terms.push({ term: pair, start: offset, end: offset + pair.length });
        }
        offset += char.length;
      }
    } else {
      const word = match[2].normalize('NFKC').toLowerCase();
      if (STOPWORDS.has(word)) continue;
      terms.push({ term: stem(word), start, end: start + match[2].length });
    }
  }
  return terms;
}

/** The terms of `text`, in order (see {@link analyze}). */
export function tokenize(text) {
  return analyze(text).map((t) => t.term);
}

/**
 * An estimate of how many model tokens `text` takes, erring high: Qwen's tokenizer spends
 * about one token per 1.4 Chinese characters and one per ~4 characters of English, so this
 * counts one per CJK character and one per 3 other characters. The page has no tokenizer of
 * its own (the engine's lives in the worker), and an overestimate only means fewer passages.
 */
export function estimateTokens(text) {
  let cjk = 0;
  for (const char of text) if (CJK_RUN.test(char)) cjk += 1;
  return cjk + Math.ceil((text.length - cjk) / 3);
}

/** Where sentences end: Western punctuation before a space, or CJK full stops. */
const SENTENCE_END = /[.!?;:](?=\s)|[。！？；]/gu;

/**
 * Cuts a document into passages of about `targetTokens` (estimated) along paragraph, then
 * sentence boundaries; only a single sentence longer than the target is cut mid-sentence.
 * `pages` is the document's text page by page (one entry for plain text); passages never span
 * pages, so each one cites one page. Returns `{page, start, end, text}` per passage, `page`
 * counting from 1 and `start`/`end` the passage's offsets in its page's text.
 */
export function chunkPages(pages, { targetTokens = 160 } = {}) {
  const chunks = [];
  pages.forEach((pageText, pageIndex) => {
    let current = null;
    const flush = () => {
      if (!current) return;
      const last = chunks.at(-1);
      // A scrap left at the end of a section (under a quarter of the target) joins the passage
      // before it instead of standing alone with too little to rank or read.
      if (!current.opensSection && last?.page === pageIndex + 1 && estimateTokens(pageText.slice(current.start, current.end)) < targetTokens / 4) {
        last.end = current.end;
        last.text = pageText.slice(last.start, last.end);
      } else {
        chunks.push({ page: pageIndex + 1, start: current.start, end: current.end, text: pageText.slice(current.start, current.end) });
      }
      current = null;
    };
    for (const unit of passageUnits(pageText, targetTokens)) {
      // A Markdown heading opens a passage and keeps the text under it, so a passage cites one
      // section and carries its title.
      const extend = current && (current.heading
        || (!unit.heading && estimateTokens(pageText.slice(current.start, unit.end)) <= targetTokens));
      if (extend) {
        current.end = unit.end;
        current.heading = unit.heading;
      } else {
        flush();
        current = { start: unit.start, end: unit.end, heading: unit.heading, opensSection: unit.heading };
      }
    }
    flush();
  });
  return chunks;
}

/**
 * The pieces a page's passages are packed from, as trimmed [start, end) ranges: its paragraphs
 * (split at blank lines, and at Markdown headings), each cut into sentences when it exceeds the
 * target, and a sentence still over it cut into target-sized pieces.
 */
function* passageUnits(text, targetTokens) {
  for (const paragraph of paragraphs(text)) {
    if (estimateTokens(text.slice(paragraph.start, paragraph.end)) <= targetTokens) {
      yield paragraph;
      continue;
    }
    for (const sentence of sentences(text, paragraph)) {
      const length = estimateTokens(text.slice(sentence.start, sentence.end));
      if (length <= targetTokens) {
        yield sentence;
        continue;
      }
      // Characters per piece, from this sentence's own characters-per-token ratio.
      const step = Math.max(1, Math.floor(((sentence.end - sentence.start) * targetTokens) / length));
      for (let start = sentence.start; start < sentence.end; start += step) {
        yield { start, end: Math.min(sentence.end, start + step), heading: false };
      }
    }
  }
}

function* paragraphs(text) {
  const breaks = /\n[ \t]*\n|\n(?=#{1,6}\s)|(?<=^#{1,6}\s[^\n]*)\n/gm;
  let start = 0;
  const emit = function* (end) {
    const range = trimRange(text, start, end);
    if (range) yield { ...range, heading: isHeading(text.slice(range.start, range.end)) };
  };
  for (const match of text.matchAll(breaks)) {
    yield* emit(match.index);
    start = match.index + match[0].length;
  }
  yield* emit(text.length);
}

/**
 * A Markdown heading, or a short single line that does not end like a sentence: the section
 * titles of plain text and PDFs ("3. Results", "三、采茶").
 */
function isHeading(paragraph) {
  if (/^#{1,6}\s/.test(paragraph)) return true;
  return !paragraph.includes('\n') && [...paragraph].length <= 60
    && !/[.!?。！？:：;；,，、]["'”’」』)）\]]*$/u.test(paragraph);
}

function* sentences(text, { start, end }) {
  const part = text.slice(start, end);
  let from = 0;
  for (const match of part.matchAll(SENTENCE_END)) {
    const to = match.index + match[0].length;
    const range = trimRange(text, start + from, start + to);
    if (range) yield { ...range, heading: false };
    from = to;
  }
  const range = trimRange(text, start + from, end);
  if (range) yield { ...range, heading: false };
}

/** [start, end) without surrounding white space; null when nothing is left. */
function trimRange(text, start, end) {
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  return end > start ? { start, end } : null;
}

/** A passage's terms as `[term, count]` pairs, and how many terms it has: what the index stores. */
export function termCounts(text) {
  const counts = new Map();
  const terms = tokenize(text);
  for (const term of terms) counts.set(term, (counts.get(term) ?? 0) + 1);
  return { terms: [...counts], length: terms.length };
}

/**
 * Okapi BM25 over passages (k1 = 1.2, b = 0.75, the usual defaults). Passages are added with
 * their precomputed term counts (the indexing worker computes them), so adding a large
 * document here is only bookkeeping.
 */
export class Bm25Index {
  constructor({ k1 = 1.2, b = 0.75 } = {}) {
    this.k1 = k1;
    this.b = b;
    /** Passage key → { passage, counts: Map<term, count>, length }. */
    this.entries = new Map();
    /** Term → number of passages containing it. */
    this.documentFrequency = new Map();
    this.totalLength = 0;
  }

  get size() {
    return this.entries.size;
  }

  /** Adds `passage` (any object) under `key`, with its `{terms, length}` from termCounts. */
  add(key, passage, { terms, length }) {
    if (this.entries.has(key)) this.remove(key);
    const counts = new Map(terms);
    this.entries.set(key, { passage, counts, length });
    for (const term of counts.keys()) this.documentFrequency.set(term, (this.documentFrequency.get(term) ?? 0) + 1);
    this.totalLength += length;
  }

  remove(key) {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    for (const term of entry.counts.keys()) {
      const df = this.documentFrequency.get(term) - 1;
      if (df === 0) this.documentFrequency.delete(term);
      else this.documentFrequency.set(term, df);
    }
    this.totalLength -= entry.length;
  }

  /** IDF with the +1 inside the logarithm (as Lucene), so a term in every passage still counts a little. */
  idf(term) {
    const df = this.documentFrequency.get(term) ?? 0;
    return Math.log(1 + (this.entries.size - df + 0.5) / (df + 0.5));
  }

  /**
   * The passages that share at least one term with `query`, best first, at most `limit`:
   * `[{key, passage, score}]`. Each distinct query term counts once.
   */
  search(query, limit = Infinity) {
    const queryTerms = [...new Set(tokenize(query))].filter((term) => this.documentFrequency.has(term));
    if (queryTerms.length === 0) return [];
    const averageLength = this.totalLength / this.entries.size;
    const idf = new Map(queryTerms.map((term) => [term, this.idf(term)]));
    const results = [];
    for (const [key, { passage, counts, length }] of this.entries) {
      let score = 0;
      for (const term of queryTerms) {
        const tf = counts.get(term);
        if (!tf) continue;
        const norm = this.k1 * (1 - this.b + (this.b * length) / averageLength);
        score += (idf.get(term) * tf * (this.k1 + 1)) / (tf + norm);
      }
      if (score > 0) results.push({ key, passage, score });
    }
    results.sort((x, y) => y.score - x.score);
    return results.slice(0, limit);
  }
}

/**
 * The character ranges of `text` whose terms occur in `query` (for highlighting a cited
 * passage), merged where they overlap or touch.
 */
export function matchRanges(text, query) {
  const wanted = new Set(tokenize(query));
  const ranges = analyze(text)
    // A lone CJK character matches too much to be worth marking; its bigrams carry the match.
    .filter(({ term }) => wanted.has(term) && !(term.length === 1 && CJK_RUN.test(term)))
    .map(({ start, end }) => [start, end])
    .sort((x, y) => x[0] - y[0]);
  const merged = [];
  for (const range of ranges) {
    const last = merged.at(-1);
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else merged.push(range);
  }
  return merged;
}
