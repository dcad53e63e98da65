// kong/kong.yml and kong/render-config.sh. A small model of Kong 3's router
// (deploy-kong-model.mjs) routes every request of the wire contract, and the matched
// route's service must reach the right upstream (api or the two gateways), with strip_path
// false, the jwt plugin on the authenticated REST routes but not on /auth, the webhook
// ingress /hooks, /socket.io or /events, hour-long timeouts and cookie/header hashing for the
// Socket.IO route, and an unbuffered, long-timeout route for SSE (GET /events). Entity fields are checked
// against Kong 3's schema names so a typo (strip_paths: false) is caught.
//
// Environment (and COURIER_DEPLOY_ROOT, see deploy-helpers.mjs):
//   COURIER_CONTRACT             contract.md to take the route list from (default: ../shared/contract.md
//                                beside the repository; optional)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { ROOT, file, read, useTmpDir } from './deploy-helpers.mjs';
import { AUTH_PLUGINS, effectivePlugins, loadKong, matchRoute, upstreamOf } from './deploy-kong-model.mjs';

const TMP = useTmpDir();

const JWT_PLACEHOLDER = '{vault://env/courier-jwt-secret}';
const SAMPLE_ID = '0190f1d2-3c4b-7a5e-8f60-718293a4b5c6';
const SAMPLE_USER = '0190f1d2-3c4b-7a5e-8f60-000000000002';
const HOUR_MS = 3_600_000;
/** Courier writes a ": ping" comment on an SSE stream every 15 s; Kong must wait well past that. */
const SSE_PING_MS = 15_000;

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
  // Contract v2
  ['GET', '/users/:userId/presence'], ['POST', '/users/presence'],
  ['PATCH', '/chats/:chatId'], ['PATCH', '/chats/:chatId/participants/:userId'],
  ['PATCH', '/chats/:chatId/messages/:messageId'], ['DELETE', '/chats/:chatId/messages/:messageId'],
  ['DELETE', '/chats/:chatId/messages/:messageId/reactions/:emoji'],
  ['GET', '/chats/:chatId/messages/:messageId/replies'],
  ['GET', '/chats/:chatId/pins'], ['DELETE', '/chats/:chatId/pins/:messageId'],
  ['POST', '/chats/:chatId/hooks'], ['GET', '/chats/:chatId/hooks'], ['DELETE', '/chats/:chatId/hooks/:hookId'],
  ['POST', '/hooks/:hookId/:token'],
  ['GET', '/notifications'], ['POST', '/notifications/read'],
  ['GET', '/search/messages'],
  ['POST', '/uploads'],
  ['GET', '/events'],
  // Contract v3
  ['GET', '/auth/sessions'], ['DELETE', '/auth/sessions/:id'], ['POST', '/auth/logout'],
  ['POST', '/auth/logout-all'], ['POST', '/auth/password'],
  ['GET', '/users/search'], ['PATCH', '/users/me'], ['DELETE', '/users/me'], ['GET', '/users/me/blocks'],
  ['PUT', '/users/:id/block'], ['DELETE', '/users/:id/block'], ['PUT', '/chats/:id/settings'],
  ['GET', '/push/vapid-public-key'], ['POST', '/push/subscriptions'], ['GET', '/push/subscriptions'],
  ['DELETE', '/push/subscriptions/:id'],
  ['POST', '/reports'], ['GET', '/admin/reports'], ['POST', '/admin/reports/:id/resolve'],
  ['POST', '/admin/users/:id/ban'], ['DELETE', '/admin/users/:id/ban'], ['DELETE', '/admin/messages/:id'],
  ['GET', '/app'],
  // The API's documents.
  ['GET', '/openapi.json'], ['GET', '/asyncapi.json'],
];
/** Routes where the credential is not a JWT in Authorization: Kong must not demand one. */
const NO_JWT_PREFIXES = ['/auth', '/hooks/', '/socket.io', '/events', '/app', '/openapi.json', '/asyncapi.json'];
const INTERNAL_PATHS = ['/healthz', '/readyz', '/metrics'];

function contractFile() {
  const candidates = [process.env.COURIER_CONTRACT, path.join(ROOT, '..', 'shared', 'contract.md')]
    .filter(Boolean);
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
    const isSse = p === '/events';
    reqs.push({
      label: `${method} ${p}`, method, path: concrete(p), headers: isSse ? { accept: 'text/event-stream' } : {},
      upstream: isSocket || isSse ? 'gateway' : 'api', jwt: !NO_JWT_PREFIXES.some((x) => p.startsWith(x)), sse: isSse,
    });
  }
  const sio = (label, method, headers = {}) => ({ label, method, path: '/socket.io/', headers, upstream: 'gateway', jwt: false, socket: true });
  reqs.push(sio('GET /socket.io/?EIO=4&transport=polling (handshake, polls)', 'GET'));
  reqs.push(sio('POST /socket.io/?EIO=4&transport=polling&sid=... (client writes)', 'POST', { 'content-type': 'text/plain;charset=UTF-8' }));
  reqs.push(sio('GET /socket.io/?EIO=4&transport=websocket (Upgrade: websocket)', 'GET',
    { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13' }));
  const sse = (label, headers) => ({ label, method: 'GET', path: '/events', headers: { accept: 'text/event-stream', ...headers },
    upstream: 'gateway', jwt: false, sse: true });
  reqs.push(sse('GET /events?token=...&lastEventId=... (a browser EventSource)', {}));
  reqs.push(sse('GET /events with Authorization and Last-Event-ID (a resuming client)',
    { authorization: 'Bearer x.y.z', 'last-event-id': '1700000000000-0' }));
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
        if (req.sse) {
          assert.equal(route.response_buffering, false,
            `route ${route.name}: response_buffering must be false (Kong would hold SSE events back)`);
          assert.equal(route.request_buffering, false, `route ${route.name}: request_buffering must be false`);
          assert.ok(service.read_timeout >= 4 * SSE_PING_MS,
            `service ${service.name}: read_timeout ${service.read_timeout} ms must outlast several ${SSE_PING_MS / 1000} s pings`);
          assert.ok(route.protocols.includes('http') && route.protocols.includes('https'), `route ${route.name}: http and https`);
          assert.ok(!route.methods?.length || route.methods.includes('GET'), `route ${route.name}: GET`);
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
    // At least 32 bytes, as Courier's JWT_SECRET (bytes: 16 two-byte characters are enough).
    for (const good of ['a'.repeat(32), 'é'.repeat(16)]) {
      assert.equal(run(good).status, 0, `render-config.sh must take the secret ${JSON.stringify(good)}`);
    }
    for (const bad of ['', 'short', 'a'.repeat(31), 'é'.repeat(15) + 'a',
      'has"quote-0123456789-0123456789-0123', 'back\\slash-0123456789-0123456789-0123']) {
      assert.notEqual(run(bad).status, 0, `render-config.sh must refuse the secret ${JSON.stringify(bad)}`);
    }
  });
});
