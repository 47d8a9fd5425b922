// The user's opt-in copy of their documents on this device: owns the IndexedDB database that
// holds documents (name, kind and page texts) when, and only when, "Remember documents on this
// device" is on. The database does not exist until the user turns that on, and turning it off
// deletes it, so by default a reload forgets every document.

const DATABASE = 'qwen-webgpu-demo-documents';
const STORE = 'documents';

/** Whether the user chose to keep documents (the database exists). */
export async function isRemembering() {
  // indexedDB.open would create the database; databases() only lists the existing ones.
  const databases = await indexedDB.databases();
  return databases.some((db) => db.name === DATABASE);
}

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'id' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Starts remembering: creates the (empty) database, which is itself the user's choice. */
export async function startRemembering() {
  (await open()).close();
}

/** Every stored document: `[{id, name, kind, paged, pages, size}]`. */
export function loadDocuments() {
  return transact('readonly', (store) => store.getAll());
}

/** Stores (or replaces) one document. */
export function saveDocument(doc) {
  return transact('readwrite', (store) => store.put(doc));
}

export function forgetDocument(id) {
  return transact('readwrite', (store) => store.delete(id));
}

/** Deletes the database and everything in it. */
export function forgetAll() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(DATABASE);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
    // Another tab holds it open; the deletion completes when that tab lets go.
    request.onblocked = () => resolve();
  });
}
