// What tests/e2e/deploy-k8s.test.mjs asserts in a rendered deploy/k8s kustomization: the
// objects Courier needs and the settings that keep it correct on Kubernetes. The numbers
// it compares against come from the source (ports from the ConfigMap and the contract's
// defaults, the shutdown bound from src/server.rs, the secret variables from
// src/config/secrets.rs, the user from the Dockerfile), not from copies here.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { file, read } from './deploy-helpers.mjs';

const PORT_VAR = { api: 'PORT', worker: 'WORKER_PORT', gateway: 'GATEWAY_PORT', pusher: 'PUSHER_PORT' };
const PORT_DEFAULT = { PORT: '3000', WORKER_PORT: '3002', GATEWAY_PORT: '3001', PUSHER_PORT: '3004' };
/** Roles that take traffic through a Service: they need a preStop drain. */
const SERVED = ['api', 'gateway'];

/** Every .rs file under src/config (recursively), src/config.rs and src/telemetry.rs. */
function configSources() {
  const out = [file('src', 'config.rs'), file('src', 'telemetry.rs')];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      const p = path.join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.rs') && !f.startsWith('tests')) out.push(p);
    }
  };
  walk(file('src', 'config'));
  return out.filter((p) => existsSync(p));
}

/** Variable names Courier reads (string literals of its configuration code). */
function courierEnvNames() {
  const names = new Set(['RUST_LOG', 'RUST_BACKTRACE', 'LOG_FORMAT', 'TOKIO_WORKER_THREADS']);
  for (const p of configSources()) {
    for (const m of readFileSync(p, 'utf8').matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)) names.add(m[1]);
  }
  return names;
}

/** `NAME` → `NAME_FILE` pairs from src/config/secrets.rs. */
function secretVars() {
  const src = read('src', 'config', 'secrets.rs');
  return new Map([...src.matchAll(/\("([A-Z0-9_]+)",\s*"([A-Z0-9_]+_FILE)"\)/g)].map((m) => [m[1], m[2]]));
}

/** SHUTDOWN_GRACE of src/server.rs, seconds: how long background tasks get after SIGTERM. */
function shutdownGraceSecs() {
  const m = /SHUTDOWN_GRACE: Duration = Duration::from_secs\((\d+)\)/.exec(read('src', 'server.rs'));
  assert.ok(m, 'SHUTDOWN_GRACE in src/server.rs');
  return Number(m[1]);
}

/** The numeric user of the Dockerfile's USER line. */
function imageUser() {
  const m = /^USER\s+(\d+)/m.exec(read('Dockerfile'));
  assert.ok(m, 'the Dockerfile runs as a numeric USER');
  return Number(m[1]);
}

const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
const quantity = (q) => {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(q));
  assert.ok(m, `quantity ${q}`);
  const unit = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2]] ?? 1;
  return Number(m[1]) * unit;
};

/** Checks the objects of one rendered kustomization (`name`: base or overlays/<o>). */
export function checkRendered(name, docs) {
  const all = (kind) => docs.filter((d) => d.kind === kind);
  const one = (kind, n) => {
    const found = docs.filter((d) => d.kind === kind && d.metadata?.name === n);
    assert.equal(found.length, 1, `${name}: one ${kind} ${n}`);
    return found[0];
  };
  const config = one('ConfigMap', 'courier-config').data;
  const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'courier-secrets');
  const secretKeys = secret ? new Set(Object.keys({ ...secret.data, ...secret.stringData })) : null;
  const known = courierEnvNames();
  const secrets = secretVars();
  const fileVars = new Set(secrets.values());
  const grace = shutdownGraceSecs();

  // ---- ConfigMap: Courier's names only, no secret in it.
  for (const k of Object.keys(config)) {
    assert.ok(known.has(k), `${name}: ConfigMap key ${k} is not a variable Courier reads`);
    assert.ok(!secrets.has(k), `${name}: ${k} is a secret: give it as ${secrets.get(k)} from the Secret`);
  }
  assert.equal(config.METRICS_HOST, '0.0.0.0', `${name}: METRICS_HOST reachable by Prometheus`);
  assert.match(config.METRICS_PORT ?? '', /^\d+$/, `${name}: METRICS_PORT set`);

  /** Checks one pod spec's env, secret files and security; returns its env map. */
  const checkPod = (what, spec, roleEnv = {}) => {
    assert.equal(spec.enableServiceLinks, false, `${what}: enableServiceLinks false (Services named redis/rabbitmq would set REDIS_PORT=tcp://...)`);
    assert.equal(spec.automountServiceAccountToken, false, `${what}: no service account token`);
    const psc = spec.securityContext ?? {};
    assert.equal(psc.runAsNonRoot, true, `${what}: runAsNonRoot`);
    assert.equal(psc.runAsUser, imageUser(), `${what}: runs as the image's user`);
    assert.equal(psc.seccompProfile?.type, 'RuntimeDefault', `${what}: seccomp RuntimeDefault`);
    assert.equal(spec.containers.length, 1, `${what}: one container`);
    const c = spec.containers[0];
    const csc = c.securityContext ?? {};
    assert.equal(csc.readOnlyRootFilesystem, true, `${what}: read-only root filesystem`);
    assert.equal(csc.allowPrivilegeEscalation, false, `${what}: no privilege escalation`);
    assert.ok(csc.capabilities?.drop?.includes('ALL'), `${what}: drops ALL capabilities`);
    assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${what}: CPU and memory requests`);
    assert.ok(c.resources?.limits?.memory, `${what}: a memory limit`);
    assert.ok(quantity(c.resources.limits.memory) >= quantity(c.resources.requests.memory), `${what}: limit ≥ request`);
    assert.ok(c.envFrom?.some((e) => e.configMapRef?.name === 'courier-config'), `${what}: envFrom courier-config`);
    assert.match(c.image, /(^|\/)courier(:[\w.-]+)?$/, `${what}: the Courier image`);

    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
    for (const k of Object.keys(env)) {
      assert.ok(known.has(k), `${what}: env ${k} is not a variable Courier reads`);
      assert.ok(!secrets.has(k), `${what}: ${k} in plain env: use ${secrets.get(k)}`);
    }
    // Every *_FILE names a file of a mounted Secret volume that carries that key.
    const mounts = (c.volumeMounts ?? []).map((m) => ({ ...m, volume: spec.volumes.find((v) => v.name === m.name) }));
    const fileEnvs = Object.keys(env).filter((k) => fileVars.has(k));
    assert.ok(fileEnvs.includes('DATABASE_URL_FILE') && fileEnvs.includes('JWT_SECRET_FILE'),
      `${what}: DATABASE_URL and JWT_SECRET come from files (${fileEnvs.join(', ')})`);
    for (const k of fileEnvs) {
      const p = env[k].value;
      const m = mounts.find((x) => p.startsWith(`${x.mountPath.replace(/\/$/, '')}/`));
      assert.ok(m?.volume?.secret, `${what}: ${k}=${p} is not in a mounted Secret`);
      assert.ok(m.readOnly, `${what}: the Secret is mounted read-only`);
      assert.equal(m.volume.secret.secretName, 'courier-secrets', `${what}: ${k} from courier-secrets`);
      const rel = p.slice(m.mountPath.replace(/\/$/, '').length + 1);
      const item = (m.volume.secret.items ?? []).find((i) => i.path === rel);
      assert.ok(item || !m.volume.secret.items, `${what}: ${k}: no item of the Secret is mounted at ${rel}`);
      if (secretKeys) assert.ok(secretKeys.has(item?.key ?? rel), `${what}: ${k}: key ${item?.key ?? rel} missing from the Secret`);
      // Group-readable files need the pod's fsGroup to be the user's group.
      const mode = item?.mode ?? m.volume.secret.defaultMode ?? 0o644;
      if ((mode & 0o004) === 0) assert.equal(psc.fsGroup, psc.runAsGroup, `${what}: fsGroup lets the user read the ${mode.toString(8)} files`);
    }
    for (const [k, v] of Object.entries(roleEnv)) assert.ok(v(env[k]), `${what}: env ${k}`);
    return { c, env };
  };

  // ---- Deployments: api, worker, gateway (and the pusher when an overlay adds it).
  const deployments = all('Deployment');
  const roleOf = (d) => d.spec.template.metadata.labels['app.kubernetes.io/component'];
  const roles = deployments.map(roleOf).sort();
  for (const r of ['api', 'gateway', 'worker']) assert.ok(roles.includes(r), `${name}: a ${r} Deployment (has ${roles})`);
  const hpas = all('HorizontalPodAutoscaler');
  const pdbs = all('PodDisruptionBudget');
  const services = all('Service');
  for (const d of deployments) {
    const role = roleOf(d);
    const what = `${name}: Deployment ${d.metadata.name}`;
    assert.ok(PORT_VAR[role], `${what}: unknown role ${role}`);
    const podLabels = d.spec.template.metadata.labels;
    assert.ok(matches(d.spec.selector.matchLabels, podLabels), `${what}: selector matches its pods`);
    const { c, env } = checkPod(what, d.spec.template.spec, role === 'gateway'
      ? { GATEWAY_ID: (e) => e?.valueFrom?.fieldRef?.fieldPath === 'metadata.name' } : {});
    assert.deepEqual(c.command ?? c.args, [role], `${what}: runs the ${role} binary`);
    assert.ok(!env.DATABASE_MIGRATION_URL_FILE, `${what}: roles get no DATABASE_MIGRATION_URL (the Job migrates; behind PgBouncer they only check)`);

    // Probes on the role's own port.
    const portVar = PORT_VAR[role];
    const port = Number(env[portVar]?.value ?? config[portVar] ?? PORT_DEFAULT[portVar]);
    const portOf = (p) => (typeof p === 'number' ? p : c.ports.find((x) => x.name === p)?.containerPort);
    for (const [probe, pathWanted] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']]) {
      const g = c[probe]?.httpGet;
      assert.equal(g?.path, pathWanted, `${what}: ${probe} on ${pathWanted}`);
      assert.equal(portOf(g.port), port, `${what}: ${probe} on ${portVar} (${port})`);
    }
    assert.equal(portOf('metrics'), Number(config.METRICS_PORT), `${what}: a metrics port = METRICS_PORT`);
    assert.ok(c.readinessProbe.timeoutSeconds > 3, `${what}: readiness timeout above /readyz's 3 s per dependency`);

    // Drain: preStop for the roles behind a Service; the grace period covers it plus the
    // background tasks' bound (SHUTDOWN_GRACE) with margin.
    const pre = c.lifecycle?.preStop;
    const preSecs = pre?.sleep?.seconds ?? Number(pre?.exec?.command?.at(-1) ?? 0);
    if (SERVED.includes(role)) assert.ok(preSecs >= 5, `${what}: a preStop drain of at least 5 s`);
    const tgp = d.spec.template.spec.terminationGracePeriodSeconds ?? 30;
    assert.ok(tgp >= preSecs + grace + 5, `${what}: terminationGracePeriodSeconds ${tgp} < preStop ${preSecs} + ${grace} + 5`);
    if (role === 'gateway') {
      const apiTgp = deployments.find((x) => roleOf(x) === 'api').spec.template.spec.terminationGracePeriodSeconds ?? 30;
      assert.ok(tgp > apiTgp, `${what}: the gateway's hand-over gets more time than the api (${tgp} vs ${apiTgp})`);
    }

    // Spread over zones and nodes.
    const tsc = d.spec.template.spec.topologySpreadConstraints ?? [];
    for (const key of ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']) {
      const t = tsc.find((x) => x.topologyKey === key);
      assert.ok(t && matches(t.labelSelector.matchLabels, podLabels), `${what}: topology spread over ${key} selecting its pods`);
    }

    // A PDB for every role; an HPA for every role but the worker (standbys, no throughput).
    const pdb = pdbs.filter((p) => matches(p.spec.selector.matchLabels, podLabels) && Object.keys(p.spec.selector.matchLabels).includes('app.kubernetes.io/component'));
    assert.equal(pdb.length, 1, `${what}: one PodDisruptionBudget`);
    assert.ok(pdb[0].spec.minAvailable !== undefined || pdb[0].spec.maxUnavailable !== undefined, `${what}: PDB bounds`);
    const hpa = hpas.filter((h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === d.metadata.name);
    if (role === 'worker') {
      assert.equal(hpa.length, 0, `${what}: no HPA (extra workers stand by; docs/operations.md)`);
      assert.ok(d.spec.replicas >= 2, `${what}: a standby worker`);
    } else {
      assert.equal(hpa.length, 1, `${what}: one HorizontalPodAutoscaler`);
      assert.equal(d.spec.replicas, undefined, `${what}: no replicas (the HPA owns the count; an apply would reset it)`);
      const cpu = hpa[0].spec.metrics.find((m) => m.type === 'Resource' && m.resource.name === 'cpu');
      assert.ok(cpu?.resource.target.averageUtilization > 0, `${what}: HPA on CPU utilization`);
      assert.ok(hpa[0].spec.minReplicas >= (role === 'pusher' ? 1 : 2), `${what}: HPA keeps a spare`);
      assert.ok(d.spec.template.spec.containers[0].resources.requests.cpu, `${what}: CPU request for the HPA`);
      if (role === 'gateway' && !name.endsWith('/example')) {
        const sockets = hpa[0].spec.metrics.find((m) => m.type === 'Pods');
        assert.equal(sockets?.pods.metric.name, 'courier_gateway_connections', `${what}: HPA on open sockets`);
        assert.ok(read('src', 'gateway', 'conns.rs').includes('"courier_gateway_connections"'), 'the gateway exports the metric');
      }
    }

    // A Service for the roles behind the ingress, on the named port.
    if (SERVED.includes(role)) {
      const svc = services.find((s) => s.metadata.name === d.metadata.name);
      assert.ok(svc && matches(svc.spec.selector, podLabels), `${what}: Service ${d.metadata.name} selects its pods`);
      assert.ok(svc.spec.ports.every((p) => portOf(p.targetPort) === port), `${what}: Service targets ${portVar}`);
    }
  }

  // ---- Metrics: a Service over every role's metrics port, and the ServiceMonitor on it.
  const metrics = services.find((s) => s.spec.ports.some((p) => p.name === 'metrics'));
  assert.ok(metrics, `${name}: a metrics Service`);
  for (const d of deployments) assert.ok(matches(metrics.spec.selector, d.spec.template.metadata.labels), `${name}: metrics Service selects ${d.metadata.name}`);
  const job = one('Job', 'courier-migrate');
  assert.ok(!matches(metrics.spec.selector, job.spec.template.metadata.labels), `${name}: the migration Job is not a metrics target`);
  const monitors = all('ServiceMonitor');
  if (!name.endsWith('/example')) {
    assert.equal(monitors.length, 1, `${name}: a ServiceMonitor`);
    const sm = monitors[0];
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    assert.ok(matches(sm.spec.selector.matchLabels, metrics.metadata.labels), `${name}: ServiceMonitor selects the metrics Service`);
    assert.ok(sm.spec.endpoints.every((e) => e.port === 'metrics' && (e.path ?? '/metrics') === '/metrics'), `${name}: scrapes /metrics on the metrics port`);
  }

  // ---- The migration Job: `courier migrate` over DATABASE_MIGRATION_URL, before the rollout.
  const jc = job.spec.template.spec.containers[0];
  assert.deepEqual([...(jc.command ?? []), ...(jc.args ?? [])], ['courier', 'migrate'], `${name}: Job runs courier migrate`);
  assert.equal(job.spec.template.spec.restartPolicy, 'Never', `${name}: Job restartPolicy Never`);
  assert.equal(job.metadata.annotations?.['argocd.argoproj.io/hook'], 'PreSync', `${name}: Job runs before the sync (Argo CD hook)`);
  const { env: jobEnv } = checkPod(`${name}: Job courier-migrate`, job.spec.template.spec);
  assert.ok(jobEnv.DATABASE_MIGRATION_URL_FILE, `${name}: the Job migrates over DATABASE_MIGRATION_URL_FILE`);

  // ---- Ingress: the api at /, the gateways at /socket.io and /events with cookie affinity
  // (long-polling) and long timeouts (WebSocket, SSE).
  const ingresses = all('Ingress');
  const routes = ingresses.flatMap((i) => i.spec.rules.flatMap((r) => r.http.paths.map((p) => ({ ing: i, host: r.host, path: p.path, svc: p.backend.service.name }))));
  assert.equal(routes.find((r) => r.path === '/')?.svc, 'courier-api', `${name}: / → courier-api`);
  for (const p of ['/socket.io', '/events']) {
    const r = routes.find((x) => x.path === p);
    assert.equal(r?.svc, 'courier-gateway', `${name}: ${p} → courier-gateway`);
    const a = r.ing.metadata.annotations ?? {};
    assert.equal(a['nginx.ingress.kubernetes.io/affinity'], 'cookie', `${name}: ${p}: cookie affinity`);
    assert.ok(a['nginx.ingress.kubernetes.io/session-cookie-name'], `${name}: ${p}: the affinity cookie's name`);
    for (const t of ['proxy-read-timeout', 'proxy-send-timeout']) {
      assert.ok(Number(a[`nginx.ingress.kubernetes.io/${t}`]) >= 3600, `${name}: ${p}: ${t} ≥ 3600 s`);
    }
    assert.equal(a['nginx.ingress.kubernetes.io/proxy-buffering'], 'off', `${name}: ${p}: unbuffered (SSE)`);
  }
  assert.equal(new Set(routes.map((r) => r.host)).size, 1, `${name}: one host for REST and realtime`);
  const apiIngress = routes.find((r) => r.path === '/').ing;
  assert.ok(!apiIngress.metadata.annotations?.['nginx.ingress.kubernetes.io/affinity'], `${name}: no affinity for REST`);

  // ---- NetworkPolicy: the ingress controller reaches api and gateway; egress to the services.
  const nps = all('NetworkPolicy');
  assert.ok(nps.length > 0, `${name}: NetworkPolicies`);
  const ingressPorts = nps.flatMap((n) => (n.spec.ingress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port)));
  assert.ok(ingressPorts.includes('http') && ingressPorts.includes('metrics'), `${name}: ingress to the http and metrics ports`);
  const egressPorts = nps.flatMap((n) => (n.spec.egress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port)));
  for (const p of [53, 5432, 6379, 5672]) assert.ok(egressPorts.includes(p), `${name}: egress to port ${p}`);

  // ---- No pod of any kind runs as root or writes its root filesystem.
  for (const d of [...deployments, job]) {
    const kind = d.kind;
    const spec = d.spec.template.spec;
    assert.notEqual(spec.securityContext.runAsUser, 0, `${name}: ${kind} ${d.metadata.name} as root`);
  }
  return { deployments, hpas, pdbs };
}
