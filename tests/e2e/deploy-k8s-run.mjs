// Starts a Courier binary with the environment a rendered deploy/k8s pod would give it:
// the ConfigMap (envFrom), the container's env (the pod name for fieldRef), and the Secret's
// keys written as files where the pod mounts them, with the *_FILE paths pointed there. Only
// the network is redirected: PostgreSQL, Redis and RabbitMQ go to 127.0.0.1 port 1, where
// nothing listens, so no traffic leaves the machine and no shared service is touched.
// Used by deploy-k8s.test.mjs to show Courier accepts (or, for placeholders, refuses) the
// configuration the manifests hand it.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { settings } from './settings.mjs';

/** Nothing listens on port 1 of the loopback: every connection is refused at once. */
const NOWHERE = { host: '127.0.0.1', port: '1' };

/** The value of a Secret key (stringData wins, as in Kubernetes). */
const secretValue = (secret, key) => {
  if (secret?.stringData?.[key] !== undefined) return String(secret.stringData[key]);
  if (secret?.data?.[key] !== undefined) return Buffer.from(secret.data[key], 'base64').toString('utf8');
  return undefined;
};

/** A database URL with its host and port replaced by NOWHERE. */
function redirectUrl(value) {
  try {
    const u = new URL(value);
    if (!/^postgres(ql)?:$/.test(u.protocol)) return value;
    u.hostname = NOWHERE.host;
    u.port = NOWHERE.port;
    return u.toString();
  } catch {
    return value;
  }
}

/**
 * The process environment of `spec`'s first container: { argv, env }. Secret files are
 * written under `dir` (from `secret`, the rendered Secret).
 */
export function podEnvironment(spec, { configMap, secret, podName, dir }) {
  const c = spec.containers[0];
  const env = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef?.name === configMap.metadata.name) Object.assign(env, configMap.data);
  }
  const files = new Map();
  for (const m of c.volumeMounts ?? []) {
    const vol = spec.volumes.find((v) => v.name === m.name);
    if (!vol?.secret) continue;
    const local = path.join(dir, m.name);
    mkdirSync(local, { recursive: true });
    const items = vol.secret.items ?? Object.keys({ ...secret?.data, ...secret?.stringData }).map((k) => ({ key: k, path: k }));
    for (const item of items) {
      const value = secretValue(secret, item.key);
      if (value === undefined) continue;
      writeFileSync(path.join(local, item.path), item.key.includes('database') ? redirectUrl(value) : value);
    }
    files.set(m.mountPath.replace(/\/$/, ''), local);
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.value !== undefined) {
      const mount = [...files.keys()].find((p) => e.value.startsWith(`${p}/`));
      env[e.name] = mount ? files.get(mount) + e.value.slice(mount.length) : e.value;
    }
  }
  Object.assign(env, {
    REDIS_HOST: NOWHERE.host, REDIS_PORT: NOWHERE.port, RABBITMQ_HOST: NOWHERE.host, RABBITMQ_PORT: NOWHERE.port,
  });
  return { argv: [...(c.command ?? []), ...(c.args ?? [])], env };
}

/**
 * Runs `argv` (its first element a binary of COURIER_BIN_DIR) with exactly `env` until it
 * either exits, or shows it got past its configuration (it logs a refused connection to
 * one of its services), then stops it. Resolves { exited, code, started, output }.
 */
export function startUntilConfigured(argv, env, { timeoutMs = 30_000 } = {}) {
  const bin = path.join(settings.binDir, argv[0]);
  const cwd = mkdtempSync(path.join(env.TMPDIR ?? '/tmp', 'courier-k8s-env-'));
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv.slice(1), { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let done = false;
    const finish = (r) => { if (!done) { done = true; clearTimeout(timer); resolve({ ...r, output }); } };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      if (!done) { done = true; reject(new Error(`${argv.join(' ')}: neither exited nor connected within ${timeoutMs} ms:\n${output}`)); }
    }, timeoutMs);
    const onData = (chunk) => {
      output += chunk;
      // Past the configuration: a service it connects to refused (all point at port 1).
      if (/not reachable yet|Connection refused/.test(output) && !done) {
        child.kill('SIGKILL');
        finish({ exited: false, started: true, code: null });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { if (!done) { done = true; clearTimeout(timer); reject(e); } });
    child.on('exit', (code) => finish({ exited: true, started: false, code }));
  });
}
