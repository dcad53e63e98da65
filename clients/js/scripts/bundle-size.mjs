// Bundle size report: a minified browser ESM bundle (esbuild) of the built SDK with
// socket.io-client, and of centrifuge-js (npm `centrifuge`, JSON client) bundled the same way
// as the anchor; prints minified and gzipped (level 9) bytes as a Markdown table.
// Run: `npm run build && npm run size`.

import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

import { ROOT } from './generate-lib.mjs';

async function measure(label, contents) {
  const out = await build({
    stdin: { contents, resolveDir: ROOT, loader: 'js' },
    bundle: true, minify: true, format: 'esm', platform: 'browser', target: 'es2020',
    write: false, legalComments: 'none', logLevel: 'error',
  });
  const code = out.outputFiles[0].contents;
  return { label, min: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength };
}

const rows = [
  await measure('@courier-chat/client (SDK + socket.io-client)', "export * from './dist/index.js';"),
  await measure('socket.io-client alone', "export { io } from 'socket.io-client';"),
  await measure('centrifuge (centrifuge-js, JSON)', "export { Centrifuge } from 'centrifuge';"),
];
console.log('| bundle | minified | gzipped |\n|---|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.min.toLocaleString('en')} B | ${r.gzip.toLocaleString('en')} B |`);
