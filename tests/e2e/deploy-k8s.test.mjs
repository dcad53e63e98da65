// deploy/k8s: renders the base and every overlay with kustomize (kubectl kustomize),
// validates each against the Kubernetes 1.30 schemas and the newest ones kubernetes-validate
// ships (strict: unknown fields fail), shows the validator rejects a corrupted copy, and
// checks what matters in the rendered objects (probes, security, drain, PDBs, HPAs, the
// `_FILE` secrets, the migration Job, the Ingress affinity). Then it starts each role's
// binary (COURIER_BIN_DIR) with the environment and secret files its pod would get, to show
// Courier accepts them (and refuses the base's placeholders). Needs no cluster.
//
// Environment (and COURIER_DEPLOY_ROOT, see deploy-helpers.mjs; COURIER_KUBECTL, see
// deploy-k8s-tools.mjs):
//   COURIER_E2E_SKIP_K8S_CLI  1 skips the render and validation when kubectl or
//                             kubernetes-validate is missing (scripts/test.sh installs both)

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';

import { file, parseYaml, read, useTmpDir } from './deploy-helpers.mjs';
import {
  KUBECTL_INSTALL, VALIDATE_INSTALL, findRenderer, parseStream, render, schemaVersions, validate, validatorVersion,
} from './deploy-k8s-tools.mjs';
import { checkRendered } from './deploy-k8s-checks.mjs';
import { podEnvironment, startUntilConfigured } from './deploy-k8s-run.mjs';
import { settings } from './settings.mjs';

const TMP = useTmpDir();
const K8S = file('deploy', 'k8s');
const overlays = existsSync(path.join(K8S, 'overlays'))
  ? readdirSync(path.join(K8S, 'overlays')).filter((d) => statSync(path.join(K8S, 'overlays', d)).isDirectory()).sort()
  : [];
const targets = [['base', path.join(K8S, 'base')], ...overlays.map((o) => [`overlays/${o}`, path.join(K8S, 'overlays', o)])];

const renderer = findRenderer(path.join(K8S, 'base'));
const versions = schemaVersions().filter((v) => Number(v.split('.')[1]) >= 30 && v.startsWith('1.'));
// The oldest supported (1.30) and the newest the validator knows.
const checkedVersions = [...new Set([versions[0], versions.at(-1)])].filter(Boolean);
const missing = [
  !renderer.argv && `kustomize (${renderer.tried.join('; ')}); install: ${KUBECTL_INSTALL}`,
  !validatorVersion() && `kubernetes-validate; install: ${VALIDATE_INSTALL}`,
].filter(Boolean);
const skip = missing.length > 0 && process.env.COURIER_E2E_SKIP_K8S_CLI === '1' && `missing ${missing.join(' and ')}`;
const need = () => assert.deepEqual(missing, [],
  'Install the missing tools (or COURIER_E2E_SKIP_K8S_CLI=1 to skip)');

/** Kinds without a schema in kubernetes-validate: CRDs, checked by deploy-k8s-checks.mjs. */
const CRDS = new Set(['monitoring.coreos.com/v1/ServiceMonitor']);

describe('deploy/k8s layout', () => {
  test('a kustomize base and at least one overlay, each with a kustomization.yaml', () => {
    assert.ok(existsSync(path.join(K8S, 'base', 'kustomization.yaml')), 'deploy/k8s/base/kustomization.yaml');
    assert.ok(overlays.includes('example'), 'deploy/k8s/overlays/example');
    for (const [name, dir] of targets) {
      const k = parseYaml(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'), `${name}/kustomization.yaml`);
      assert.equal(k.kind ?? 'Kustomization', 'Kustomization', name);
      if (name !== 'base') {
        const refs = [...(k.resources ?? []), ...(k.bases ?? [])];
        assert.ok(refs.some((r) => path.resolve(dir, r) === path.join(K8S, 'base')), `${name} builds on ../../base`);
      }
    }
  });
});

describe('kustomize render and schema validation', { skip }, () => {
  const rendered = new Map();
  const renderOf = (name, dir) => {
    if (!rendered.has(name)) {
      const r = render(renderer, dir);
      assert.equal(r.status, 0, `${renderer.label} ${name}:\n${r.stderr}`);
      rendered.set(name, r.stdout);
    }
    return rendered.get(name);
  };

  test(`tools: ${renderer.label ?? 'no kustomize'} (${renderer.version ?? ''}), kubernetes-validate ${validatorVersion()}, schemas ${checkedVersions.join(', ')}`, () => {
    need();
    assert.ok(versions[0] === '1.30.0', `kubernetes-validate ships the 1.30 schemas (has ${versions.join(', ')})`);
  });

  for (const [name, dir] of targets) {
    test(`${name}: renders and validates against Kubernetes ${checkedVersions.join(' and ')}`, () => {
      need();
      const out = path.join(TMP, `${name.replace('/', '-')}.yaml`);
      writeFileSync(out, renderOf(name, dir));
      for (const v of checkedVersions) {
        const r = validate(out, v);
        assert.ok(r.ok, `${name} against ${v}:\n${r.output}`);
        const unknown = r.missingSchemas.filter((k) => !CRDS.has(k));
        assert.deepEqual(unknown, [], `${name}: kinds kubernetes-validate has no schema for (only known CRDs may be skipped)`);
      }
    });

    test(`${name}: the rendered objects are what Courier needs`, () => {
      need();
      checkRendered(name, parseStream(renderOf(name, dir), name));
    });
  }

  test('a corrupted manifest fails the validation (wrong types, unknown fields)', () => {
    need();
    const docs = parseStream(renderOf('base', path.join(K8S, 'base')), 'base');
    const corruptions = {
      'replicas as a string': (d) => { if (d.kind === 'Deployment') d.spec.replicas = 'two'; },
      'a misspelt probe field': (d) => {
        if (d.kind === 'Deployment') {
          const c = d.spec.template.spec.containers[0];
          c.readinesProbe = c.readinessProbe;
          delete c.readinessProbe;
        }
      },
      'containerPort out of range': (d) => { if (d.kind === 'Deployment') d.spec.template.spec.containers[0].ports[0].containerPort = 70000; },
      'HPA target without a type': (d) => { if (d.kind === 'HorizontalPodAutoscaler') delete d.spec.metrics[0].resource.target.type; },
    };
    const files = Object.entries(corruptions).map(([what, corrupt]) => {
      const copy = structuredClone(docs);
      copy.forEach(corrupt);
      assert.notDeepEqual(copy, docs, `${what}: the corruption changed nothing`);
      const bad = path.join(TMP, `corrupt-${what.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(bad, copy.map((d) => YAML.stringify(d)).join('---\n'));
      return [what, bad];
    });
    // One validator run for all copies (it names the file on each ERROR line).
    const r = validate(files.map(([, f]) => f), checkedVersions[0]);
    assert.ok(!r.ok, `kubernetes-validate accepted every corrupted copy:\n${r.output}`);
    for (const [what, bad] of files) {
      assert.ok(r.errors.some((l) => l.includes(bad)), `${what}: no ERROR for ${bad}:\n${r.output}`);
    }
  });

  test('a kustomization that does not build fails the render', () => {
    need();
    const dir = path.join(TMP, 'broken-overlay');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'kustomization.yaml'),
      `resources:\n  - ${path.relative(dir, path.join(K8S, 'base'))}\npatches:\n  - path: missing-patch.yaml\n`);
    const r = render(renderer, dir);
    assert.notEqual(r.status, 0, 'a patch file that does not exist must fail the render');
  });
});

describe('Courier accepts the environment the pods get', { skip }, () => {
  const docsOf = (dir, name) => {
    const r = render(renderer, dir);
    assert.equal(r.status, 0, r.stderr);
    return parseStream(r.stdout, name);
  };
  const pods = (docs) => docs.filter((d) => ['Deployment', 'Job'].includes(d.kind));
  const setup = (docs, what) => {
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'courier-config');
    const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'courier-secrets');
    const dir = path.join(TMP, 'pods', what);
    mkdirSync(dir, { recursive: true });
    return { configMap, secret, dir };
  };
  const needBinaries = (argv) => assert.ok(existsSync(path.join(settings.binDir, argv[0])),
    `${argv[0]} not in ${settings.binDir}: build the binaries or set COURIER_BIN_DIR`);

  test('overlays/example: every role gets past its configuration; the Job too', async () => {
    need();
    const docs = docsOf(path.join(K8S, 'overlays', 'example'), 'example');
    const ctx = setup(docs, 'example');
    for (const d of pods(docs)) {
      const { argv, env } = podEnvironment(d.spec.template.spec, { ...ctx, podName: `${d.metadata.name}-0`, dir: path.join(ctx.dir, d.metadata.name) });
      needBinaries(argv);
      const r = await startUntilConfigured(argv, env);
      assert.doesNotMatch(r.output, /configuration error/, `${d.kind} ${d.metadata.name}: ${argv.join(' ')}:\n${r.output}`);
      assert.notEqual(r.code, 78, `${d.kind} ${d.metadata.name}: exit 78 (configuration)`);
      if (d.kind === 'Deployment') assert.ok(r.started, `${d.metadata.name}: did not reach its services:\n${r.output}`);
    }
  });

  test('base: the placeholder Secret is refused at start-up (JWT_SECRET too short)', async () => {
    need();
    const docs = docsOf(path.join(K8S, 'base'), 'base');
    const ctx = setup(docs, 'base');
    const api = pods(docs).find((d) => d.metadata.name === 'courier-api');
    const { argv, env } = podEnvironment(api.spec.template.spec, { ...ctx, podName: 'courier-api-0', dir: path.join(ctx.dir, 'api') });
    needBinaries(argv);
    const r = await startUntilConfigured(argv, env);
    assert.equal(r.code, 78, `the placeholders must stop the api:\n${r.output}`);
    assert.match(r.output, /JWT_SECRET/);
  });
});

describe('docs', () => {
  test('docs/operations.md has the Kubernetes section and the sizing table', () => {
    const ops = read('docs', 'operations.md');
    assert.match(ops, /^## Kubernetes$/m);
    assert.match(ops, /^### Sizing$/m);
    for (const o of overlays) assert.ok(ops.includes(`deploy/k8s/overlays/${o}`), `docs name overlays/${o}`);
    assert.ok(ops.includes('courier_gateway_connections'), 'the sockets metric the gateway HPA uses is documented');
  });
});
