#!/usr/bin/env node
// Used by scripts/build-wasm after wasm-opt: node scripts/wasm-interface.mjs BEFORE.wasm AFTER.wasm
// (binaryen 108, Debian bookworm's, retypes wasm-bindgen's externref table as funcref.)
// Compares two wasm modules' interfaces: import/export names and kinds, and for exported tables
// whether they hold externref (accept a JS object) or funcref. Exit 1 when they differ.
import { readFileSync } from 'node:fs';
async function shape(path) {
  const mod = await WebAssembly.compile(readFileSync(path));
  const imports = {};
  for (const i of WebAssembly.Module.imports(mod)) {
    imports[i.module] ??= {};
    if (i.kind === 'function') imports[i.module][i.name] = () => { throw new Error('stub'); };
    else if (i.kind === 'memory') imports[i.module][i.name] = new WebAssembly.Memory({ initial: 1024 });
    else return { mod, skip: `imports a ${i.kind}` };
  }
  const inst = await WebAssembly.instantiate(mod, imports);
  const desc = [];
  for (const i of WebAssembly.Module.imports(mod)) desc.push(`import ${i.module}.${i.name}: ${i.kind}`);
  for (const e of WebAssembly.Module.exports(mod)) {
    let kind = e.kind;
    if (kind === 'table') {
      const t = inst.exports[e.name];
      try { t.set(0, {}); kind += ' externref'; } catch { kind += ' funcref'; }
    }
    desc.push(`export ${e.name}: ${kind}`);
  }
  return { desc };
}
const [a, b] = await Promise.all(process.argv.slice(2, 4).map(shape));
if (a.skip || b.skip) { console.log(`interface check skipped: ${a.skip || b.skip}`); process.exit(0); }
// Order does not matter, and an optimiser may drop imports nothing calls; every export must
// stay with its kind, and no import may appear.
const before = new Set(a.desc), after = new Set(b.desc);
const diff = [
  ...a.desc.filter((x) => x.startsWith('export') && !after.has(x)).map((x) => `lost ${x}`),
  ...b.desc.filter((x) => !before.has(x)).map((x) => `new ${x}`),
];
if (diff.length) { console.error('interfaces differ:\n  ' + diff.join('\n  ')); process.exit(1); }
