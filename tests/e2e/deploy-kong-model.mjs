// A model of Kong 3 for the deployment-file tests: the declarative configuration's
// entities, checked against Kong 3's field names (`loadKong`), and Kong's router (prefix
// and regex paths, methods, protocols, hosts, headers; the most specific route wins:
// `matchRoute`), with the plugins and upstream a route leads to.

import assert from 'node:assert/strict';

import { parseYaml } from './deploy-helpers.mjs';

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
export const AUTH_PLUGINS = ['jwt', 'key-auth', 'basic-auth', 'hmac-auth', 'oauth2', 'ldap-auth',
  'openid-connect', 'request-termination'];

function checkFields(obj, kind, where) {
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), `${where}: must be a mapping`);
  const unknown = Object.keys(obj).filter((k) => !KONG_FIELDS[kind].includes(k));
  assert.deepEqual(unknown, [], `${where}: fields unknown to Kong 3 (${kind})`);
}

const isInt = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;

/** Flattens kong.yml into services, routes, upstreams (with targets), consumers and plugins. */
export function loadKong(text) {
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
export function matchRoute(kong, req) {
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
export function effectivePlugins(kong, route) {
  return kong.plugins.filter((p) => p.enabled && (p.scope === 'global'
    || (p.scope === 'service' && p.ref === route.service)
    || (p.scope === 'route' && p.ref === route.name)));
}

export function upstreamOf(kong, route) {
  const service = kong.services.find((s) => s.name === route.service);
  const upstream = kong.upstreams.find((u) => u.name === service.host);
  return { service, upstream };
}
