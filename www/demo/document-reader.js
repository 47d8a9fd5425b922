// Reading a dropped file into text, inside the page: owns the accepted formats, the text
// decoding of .txt/.md files (UTF-8, UTF-16 and the GB18030 that many Chinese text files still
// use) and PDF text extraction through pdf.js, page by page. Nothing is uploaded: pdf.js parses
// in its own worker, loaded from this site like its character maps and fonts.

const PDFJS = new URL('../node_modules/pdfjs-dist/', import.meta.url);
/** Larger files are refused: their text would not fit any model's context or the tab's memory comfortably. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** File kinds by extension (browsers often report an empty type for .md). */
export function documentKind(fileName) {
  const extension = fileName.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1];
  if (extension === 'pdf') return 'pdf';
  if (extension === 'md' || extension === 'markdown') return 'markdown';
  if (extension === 'txt' || extension === 'text') return 'text';
  return null;
}

/**
 * The file's text as pages: `{kind, pages, paged}`; `paged` (PDFs) means the pages are real
 * pages that citations can name. `onProgress(done, total)` reports PDF pages as they are read.
 */
export async function readDocument(file, onProgress = () => {}) {
  const kind = documentKind(file.name);
  if (!kind) throw new Error('only .txt, .md and .pdf files can be added');
  if (file.size > MAX_FILE_BYTES) throw new Error(`the file is larger than ${MAX_FILE_BYTES / 1024 / 1024} MB`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (kind === 'pdf') return { kind, pages: await pdfPages(bytes, onProgress), paged: true };
  const text = decodeText(bytes).replace(/\r\n?/g, '\n');
  onProgress(1, 1);
  return { kind, pages: [text], paged: false };
}

/** Text from bytes: by byte-order mark, else UTF-8 when valid, else GB18030. */
export function decodeText(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('gb18030').decode(bytes);
  }
}

let pdfjsModule = null;

/** pdf.js, loaded the first time a PDF is added (the page does not need it before). */
async function pdfjs() {
  if (!pdfjsModule) {
    pdfjsModule = await import(new URL('build/pdf.min.mjs', PDFJS).href);
    pdfjsModule.GlobalWorkerOptions.workerSrc = new URL('build/pdf.worker.min.mjs', PDFJS).href;
  }
  return pdfjsModule;
}

async function pdfPages(bytes, onProgress) {
  const { getDocument } = await pdfjs();
  const task = getDocument({
    data: bytes,
    // CJK PDFs name predefined character maps; pdf.js fetches them (and the standard fonts'
    // metrics) from these same-site folders.
    cMapUrl: new URL('cmaps/', PDFJS).href,
    cMapPacked: true,
    standardFontDataUrl: new URL('standard_fonts/', PDFJS).href,
    wasmUrl: new URL('wasm/', PDFJS).href,
    isEvalSupported: false,
    disableFontFace: true,
  });
  const pdf = await task.promise;
  try {
    const pages = [];
    for (let number = 1; number <= pdf.numPages; number++) {
      const page = await pdf.getPage(number);
      const content = await page.getTextContent();
      pages.push(content.items.map((item) => (item.str ?? '') + (item.hasEOL ? '\n' : '')).join(''));
      page.cleanup();
      onProgress(number, pdf.numPages);
    }
    if (pages.every((text) => text.trim() === '')) {
      throw new Error('this PDF has no text layer (a scan?); only PDFs with selectable text can be read');
    }
    return pages;
  } finally {
    await task.destroy();
  }
}
