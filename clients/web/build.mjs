// Builds the demo web app into dist/: src/main.js bundled (with the SDK,
// `@courier-chat/client` from ../js) into dist/app.js, src/app.css into dist/app.css, and
// src/index.html copied. Courier serves dist/ at /app/ (WEB_APP_DIR), so index.html refers
// to its assets by absolute /app/... paths. `node build.mjs --watch` rebuilds on change.

import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'dist');
const sdkDir = path.resolve(here, '../js');

/** The SDK's entry: its compiled dist (what npm users get), else its TypeScript sources. */
function sdkEntry() {
  for (const candidate of ['dist/index.js', 'src/index.ts']) {
    const file = path.join(sdkDir, candidate);
    if (existsSync(file)) return file;
  }
  throw new Error(`the SDK is missing at ${sdkDir}: run scripts/build-web.sh (it builds clients/js first)`);
}

/** Resolves `@courier-chat/client` to the SDK in ../js instead of node_modules. */
const sdkPlugin = {
  name: 'courier-sdk',
  setup(build) {
    build.onResolve({ filter: /^@courier-chat\/client$/ }, () => ({ path: sdkEntry() }));
  },
};

const options = {
  entryPoints: [
    { in: path.join(here, 'src/main.js'), out: 'app' },
    { in: path.join(here, 'src/app.css'), out: 'app' },
  ],
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  platform: 'browser',
  minify: true,
  sourcemap: true,
  outdir: out,
  logLevel: 'warning',
  plugins: [sdkPlugin],
};

await mkdir(out, { recursive: true });
await copyFile(path.join(here, 'src/index.html'), path.join(out, 'index.html'));
if (process.argv.includes('--watch')) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  process.stdout.write('watching src/ (Ctrl-C to stop)\n');
} else {
  await esbuild.build(options);
}
