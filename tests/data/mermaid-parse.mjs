// Parse each Mermaid document given as a file argument with Mermaid's own parser (under jsdom).
// usage: node mermaid-parse.mjs MODULES_DIR FILE...   (MODULES_DIR holds mermaid and jsdom)
// Prints `ok FILE <type>` or `error FILE <message>`; exits 1 when any document fails.
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';
const [modules, ...files] = process.argv.slice(2);
const load = (name) => {
  const pkg = path.join(modules, name);
  const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  const entry = (meta.exports && meta.exports['.'] && (meta.exports['.'].import || meta.exports['.'].default)) || meta.module || meta.main;
  const file = typeof entry === 'string' ? entry : (entry.default || entry.node || entry.import);
  return import(pathToFileURL(path.join(pkg, file)).href);
};
const { JSDOM } = await load('jsdom');
const dom = new JSDOM('<!DOCTYPE html><body></body>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const mermaid = (await load('mermaid')).default;
mermaid.initialize({ startOnLoad: false });
let failed = false;
for (const f of files) {
  try {
    const r = await mermaid.parse(fs.readFileSync(f, 'utf8'));
    console.log(`ok ${f} ${r.diagramType}`);
  } catch (e) {
    failed = true;
    console.log(`error ${f} ${(e && e.message ? e.message : String(e)).replace(/\n/g, ' ')}`);
  }
}
process.exit(failed ? 1 : 0);
