// Copies the repository's licence files (LICENSE-MIT, LICENSE-APACHE: the crate and the package
// are "MIT OR Apache-2.0") into www/ before `npm pack`/`npm publish`, which take files from the
// package directory only; the copies are git-ignored, the repository root holds the originals.

import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const www = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const name of ['LICENSE-MIT', 'LICENSE-APACHE']) {
  await copyFile(path.join(www, '..', name), path.join(www, name));
}
