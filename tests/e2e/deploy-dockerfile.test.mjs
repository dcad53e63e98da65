// Dockerfile and .dockerignore: a multi-stage build of the five binaries with dependency
// caching, a slim non-root runtime, and a build context without target/, node_modules/,
// .git or .env. Reads the files only; needs no Docker engine.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { read } from './deploy-helpers.mjs';

// ===========================================================================================
// Dockerfile and .dockerignore
// ===========================================================================================

/** Dockerfile instructions (continuations joined, comments dropped) grouped by stage. */
function parseDockerfile(text) {
  const lines = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!cur && (/^\s*#/.test(line) || !line.trim())) continue;
    if (cur && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) { cur += `${line.slice(0, -1)} `; continue; }
    lines.push((cur + line).trim());
    cur = '';
  }
  if (cur.trim()) lines.push(cur.trim());
  const args = {};
  const stages = [];
  for (const l of lines) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(l);
    const ins = { op: op.toUpperCase(), rest };
    if (ins.op === 'ARG' && !stages.length) {
      const [k, v] = rest.split('=');
      args[k.trim()] = v?.trim();
    } else if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      const image = m[1].replace(/\$\{?([A-Za-z_]+)(?::-([^}]*))?\}?/g, (_, n, d) => args[n] ?? d ?? '');
      stages.push({ image, name: m[2], ins: [] });
    } else {
      assert.ok(stages.length, `${op} before FROM`);
      stages.at(-1).ins.push(ins);
    }
  }
  return stages;
}

function cargoBins() {
  const toml = read('Cargo.toml');
  const bins = [];
  for (const block of toml.split(/^\[\[bin\]\]\s*$/m).slice(1)) {
    const body = block.split(/^\[/m)[0];
    const name = /^name\s*=\s*"([^"]+)"/m.exec(body)?.[1];
    const p = /^path\s*=\s*"([^"]+)"/m.exec(body)?.[1];
    if (name) bins.push({ name, path: p });
  }
  return bins;
}

describe('Dockerfile', () => {
  /** The path crates of Cargo.toml's [patch.crates-io] (patches/README.md). */
  const patchDirs = () => {
    const section = read('Cargo.toml').split(/^\[patch\.crates-io\]$/m)[1]?.split(/^\[/m)[0] ?? '';
    return [...section.matchAll(/path\s*=\s*"([^"]+)"/g)].map((m) => m[1]);
  };
  const stages = parseDockerfile(read('Dockerfile'));
  const bins = cargoBins();
  const builder = stages[0];
  const runtime = stages.at(-1);

  test('Cargo.toml declares the five binaries', () => {
    assert.deepEqual(bins.map((b) => b.name).sort(), ['api', 'courier', 'gateway', 'pusher', 'worker']);
  });

  test('is multi-stage: a Rust bookworm builder and a debian:bookworm-slim runtime', () => {
    assert.ok(stages.length >= 2);
    assert.match(builder.image, /^rust:[\w.-]*bookworm$/, `builder image ${builder.image}`);
    assert.equal(runtime.image, 'debian:bookworm-slim');
  });

  test('caches dependencies: the manifest is built with stub sources before the real sources are copied', () => {
    const ins = builder.ins;
    const idx = (pred) => ins.findIndex(pred);
    const copyManifest = idx((i) => i.op === 'COPY' && /\bCargo\.toml\b/.test(i.rest) && /\bCargo\.lock\b/.test(i.rest));
    const copySrc = idx((i) => i.op === 'COPY' && /^(--\S+\s+)*src\b/.test(i.rest));
    const builds = ins.map((i, n) => [i, n]).filter(([i]) => i.op === 'RUN' && /cargo build\b[^&]*--release/.test(i.rest));
    assert.ok(copyManifest >= 0 && copySrc > copyManifest, 'COPY Cargo.toml Cargo.lock comes before COPY src');
    const depBuild = builds.find(([, n]) => n > copyManifest && n < copySrc);
    assert.ok(depBuild, 'a cargo build --release between copying the manifest and the sources');
    // [patch.crates-io] path crates are dependencies: copied before the dependency build.
    for (const dir of patchDirs()) {
      const holds = (w) => { const src = w.replace(/^\.\//, '').replace(/\/$/, ''); return dir === src || dir.startsWith(`${src}/`); };
      const copy = idx((i) => i.op === 'COPY' && i.rest.split(/\s+/).slice(0, -1).some(holds));
      assert.ok(copy >= 0 && copy < depBuild[1], `COPY ${dir} (a [patch.crates-io] crate) before the dependency build`);
    }
    assert.match(depBuild[0].rest, /src\/lib\.rs/, 'the stub step creates src/lib.rs');
    for (const b of bins) {
      assert.ok(depBuild[0].rest.includes(b.name), `the stub step creates a main for ${b.name} (${b.path})`);
    }
    assert.ok(builds.some(([, n]) => n > copySrc), 'the release build after copying the sources');
    for (const d of ['src', 'bin', 'migrations']) {
      assert.ok(ins.some((i) => i.op === 'COPY' && new RegExp(`^(--\\S+\\s+)*${d}\\b`).test(i.rest)),
        `COPY ${d} (migrations are embedded by sqlx::migrate! at compile time)`);
    }
    const final = builds.at(-1)[0].rest;
    assert.ok(/--bins\b/.test(final) || bins.every((b) => final.includes(`--bin ${b.name}`)), 'the final build builds every binary');
    assert.match(final, /--locked/, 'builds exactly Cargo.lock');
  });

  test('the runtime has the five binaries in /usr/local/bin, curl for health checks, and no root', () => {
    const copies = runtime.ins.filter((i) => i.op === 'COPY' && /--from=/.test(i.rest));
    for (const b of bins) {
      assert.ok(copies.some((c) => new RegExp(`/${b.name}\\b`).test(c.rest) && /\/usr\/local\/bin\/?$/.test(c.rest)),
        `${b.name} copied to /usr/local/bin`);
    }
    const runs = runtime.ins.filter((i) => i.op === 'RUN').map((i) => i.rest).join('\n');
    assert.match(runs, /apt-get install[^\n]*\bcurl\b/, 'curl installed');
    assert.match(runs, /apt-get install[^\n]*\bca-certificates\b/, 'ca-certificates installed');
    const user = runtime.ins.filter((i) => i.op === 'USER').at(-1)?.rest;
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `runs as a non-root user (USER ${user})`);
  });

  test('.dockerignore keeps target, node_modules, .git and .env out, and the sources in', () => {
    const patterns = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    // Docker's matching (Go filepath.Match plus **), for the patterns used here.
    const toRe = (p) => {
      const glob = p.replace(/^\//, '').replace(/\/$/, '');
      let re = '';
      for (let i = 0; i < glob.length; i++) {
        const c = glob[i];
        if (glob.startsWith('**/', i)) { re += '(?:.*/)?'; i += 2; } else if (glob.startsWith('**', i)) { re += '.*'; i += 1; } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return new RegExp(`^${re}(?:/.*)?$`);
    };
    const ignored = (p) => {
      let out = false;
      for (const pat of patterns) {
        const neg = pat.startsWith('!');
        if (toRe(neg ? pat.slice(1) : pat).test(p)) out = !neg;
      }
      return out;
    };
    for (const p of ['target', 'target/release/api', 'tests/e2e/node_modules', '.git', '.env']) {
      assert.ok(ignored(p), `${p} must be ignored`);
    }
    for (const p of ['Cargo.toml', 'Cargo.lock', 'src/lib.rs', 'bin/api.rs', ...bins.map((b) => b.path).filter(Boolean),
      'migrations/0001_init.sql', ...patchDirs().map((d) => `${d}/src/lib.rs`)]) {
      assert.ok(!ignored(p), `${p} is needed by the build`);
    }
  });
});
