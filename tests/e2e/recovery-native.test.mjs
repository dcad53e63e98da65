// Socket.IO-native connection state recovery (contract v3 "Clients"): a stock
// socket.io-client (>= 4.6) configured with `auth: {token}` only, whose own reconnection
// and recovery do everything: it keeps the `pid` of the CONNECT answer and the last
// string argument of each event (Courier sends the offset as a trailing argument),
// reconnects with auth {token, pid, offset}, and sets `socket.recovered` when the
// answer carries the same pid. The test client never touches an offset.
//  - a 300-event burst across a `kill -9` and restart of the client's gateway (the pid
//    lives in no gateway's memory): recovered, every message once, in order, per
//    transport (the default polling + upgrade, WebSocket only, polling only);
//  - past RECOVERY_MAX_EVENTS: recovered false, a new pid, session.recovered false;
//  - a pid of another user, or a forged one, is not echoed.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import { io } from 'socket.io-client';

import { EVENTS } from './contract.mjs';
import { useDeployment, waitFor } from './harness.mjs';
import { RECOVERED, assertIncreasing, assertRecovered, compareOffsets } from './realtime.mjs';

/**
 * A stock socket.io-client socket on `/chat` at `url`: `auth: {token}` (plus `auth`, to
 * craft a handshake) and, when given, `transports`; everything else is the library's
 * default, reconnection included. Records every event with all its arguments and each
 * `connect` with `socket.recovered` and the pid the server answered.
 */
function stockClient(url, token, { transports, auth = {}, label = 'stock', reconnection = true } = {}) {
  const socket = io(`${url}/chat`, {
    auth: { token, ...auth }, forceNew: true, reconnection, ...(transports ? { transports } : {}),
  });
  const c = { label, socket, events: [], connects: [] };
  socket.onAny((event, ...args) => c.events.push({ event, args, payload: args[0] }));
  // `_pid` is the client's own copy of the CONNECT answer's pid (socket.io-client 4.6+).
  socket.on('connect', () => c.connects.push({ recovered: socket.recovered, pid: socket._pid, at: c.events.length }));
  c.recovereds = () => c.events.filter((e) => e.event === RECOVERED);
  c.news = () => c.events.filter((e) => e.event === EVENTS.NEW);
  c.untilSessions = (n, timeoutMs = 30_000) => waitFor(() => c.connects.length >= n && c.recovereds().length >= n,
    timeoutMs, { message: () => `${label}: ${c.connects.length} connects, ${c.recovereds().length} ${RECOVERED} (want ${n})` });
  return c;
}

/** Every event with an `offset` in its payload carries it as its trailing argument; the others carry one argument. */
function assertTrailingOffsets(c) {
  for (const e of c.events) {
    if (typeof e.payload?.offset === 'string') {
      assert.equal(e.args.length, 2, `${c.label}: ${e.event} has ${e.args.length} arguments`);
      assert.equal(e.args[1], e.payload.offset, `${c.label}: ${e.event}'s trailing argument is its offset`);
    } else {
      assert.equal(e.args.length, 1, `${c.label}: ${e.event} without an offset has ${e.args.length} arguments`);
    }
  }
}

/** The messages of `c` per chat: sequences 1..n, each once, in order. Returns the count per chat. */
function assertExactlyOnceInOrder(c, expected) {
  const byChat = new Map();
  for (const e of c.news()) {
    const m = e.payload.message;
    byChat.set(m.chatId, [...(byChat.get(m.chatId) ?? []), m.sequence]);
  }
  for (const [chatId, n] of Object.entries(expected)) {
    const got = byChat.get(chatId) ?? [];
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i + 1), `${c.label}: chat ${chatId} sequences`);
  }
  assertIncreasing(c.events.filter((e) => e.event !== RECOVERED && typeof e.payload?.offset === 'string')
    .map((e) => e.payload.offset), c.label);
}

/** Sends `count` messages from `token`, one after the other, into `chatOf(i)`. */
async function sendMany(d, token, count, chatOf, label) {
  for (let i = 1; i <= count; i++) await d.send(token, chatOf(i), `${label} #${i}`);
}

/** Waits until `watcher` (a ChatClient) holds `n` chat.message.saved: the worker handled every send. */
const savedAtLeast = (watcher, n) => waitFor(() => watcher.count(EVENTS.SAVED) >= n, 60_000,
  { message: () => `${watcher.label} has ${watcher.count(EVENTS.SAVED)}/${n} saved` });

/** `kill -9` of gateway-1 while `during()` runs, then its restart (same port): its clients reconnect to a new process. */
async function killDuring(d, during) {
  await d.process('gateway-1').kill('SIGKILL');
  await during();
  await d.restart('gateway-1');
}

describe('default retention, two gateways', () => {
  const d = useDeployment({ mode: 'split', gateways: 2 });

  const burst = (transports) => async () => {
    const [alice, bob, carol] = await d.registerAll('alice', 'bob', 'carol');
    const direct = await d.createDirect(alice.accessToken, bob.user.id);
    const group = await d.createGroup(alice.accessToken, 'native trio', [bob.user.id, carol.user.id]);
    const watcher = await d.connect(1, alice.accessToken, { label: 'alice@gw2' });
    const bobc = stockClient(d.gateway(0), bob.accessToken, { transports, label: `bob@gw1 (${transports ?? 'default'})` });
    try {
      await bobc.untilSessions(1, 10_000);
      const [first] = bobc.connects;
      assert.equal(first.recovered, false, 'a fresh connection is not recovered');
      assert.equal(typeof first.pid, 'string', 'CONNECT answers a pid');
      assertRecovered(bobc.recovereds()[0].payload, false, 'fresh');

      const total = 300;
      const chatOf = (i) => (i % 3 === 0 ? group.id : direct.id);
      const sending = sendMany(d, alice.accessToken, total, chatOf, 'burst');
      await waitFor(() => bobc.news().length >= 100, 30_000, { message: () => `bob got ${bobc.news().length}/100` });
      let beforeKill;
      await killDuring(d, async () => {
        beforeKill = bobc.news().length;
        await sending;
        await savedAtLeast(watcher, total);
      });
      await bobc.untilSessions(2);
      assert.ok(beforeKill < total, `the kill came mid-burst (bob had ${beforeKill})`);

      const again = bobc.connects[1];
      assert.equal(again.recovered, true, 'socket.recovered after the restart');
      assert.equal(again.pid, first.pid, 'the same pid');
      const recoveredAt = bobc.events.indexOf(bobc.recovereds()[1]);
      assertRecovered(bobc.recovereds()[1].payload, true, 'after the restart');
      const replay = bobc.events.slice(again.at, recoveredAt).filter((e) => typeof e.payload?.offset === 'string');
      assert.ok(replay.length > 0 && replay.every((e) => e.event === EVENTS.NEW), `replayed before ${RECOVERED}: ${replay.length}`);
      await waitFor(() => bobc.news().length >= total, 10_000, { message: () => `bob got ${bobc.news().length}/${total}` });
      assertExactlyOnceInOrder(bobc, { [direct.id]: total - total / 3, [group.id]: total / 3 });
      assertTrailingOffsets(bobc);
      process.stderr.write(`[e2e] ${bobc.label}: ${beforeKill} before the kill, ${replay.length} replayed\n`);
    } finally {
      bobc.socket.close();
    }
  };

  d.test('300 events across kill -9 and restart of the gateway, default transports (polling, upgrade)',
    { timeout: 120_000 }, burst(undefined));
  d.test('300 events across kill -9 and restart of the gateway, WebSocket only', { timeout: 120_000 }, burst(['websocket']));
  d.test('300 events across kill -9 and restart of the gateway, polling only', { timeout: 120_000 }, burst(['polling']));

  d.test('a pid is echoed for its own user only; a forged one never; auth.offset alone still recovers', async () => {
    const [alice, bob, mallory] = await d.registerAll('alice', 'bob', 'mallory');
    const chat = await d.createDirect(alice.accessToken, bob.user.id);
    const watcher = await d.connect(1, alice.accessToken, { label: 'alice@gw2' });
    const bobc = stockClient(d.gateway(0), bob.accessToken, { label: 'bob' });
    const crafted = [];
    /** One handshake with `auth` besides the token, no reconnection: its pid, recovery and replay. */
    const handshake = async (token, auth, label) => {
      const c = stockClient(d.gateway(1), token, { auth, label, reconnection: false, transports: ['websocket'] });
      crafted.push(c);
      await c.untilSessions(1, 10_000);
      const { payload } = c.recovereds()[0];
      const replayed = c.events.slice(0, c.events.indexOf(c.recovereds()[0])).filter((e) => e.event === EVENTS.NEW);
      return { pid: c.connects[0].pid, payload, replayed: replayed.length };
    };
    try {
      await bobc.untilSessions(1, 10_000);
      await d.send(alice.accessToken, chat.id, 'one');
      await waitFor(() => bobc.news().length === 1, 10_000, { message: 'bob got "one"' });
      const { pid } = bobc.connects[0];
      const offset = bobc.news()[0].args.at(-1);
      for (let i = 2; i <= 4; i++) await d.send(alice.accessToken, chat.id, `m${i}`);
      await savedAtLeast(watcher, 4);

      // Bob's own pid and offset (what his socket.io-client sends): echoed, 3 replayed.
      const own = await handshake(bob.accessToken, { pid, offset }, 'bob, own pid');
      assert.equal(own.pid, pid, 'own pid echoed');
      assertRecovered(own.payload, true, 'own pid');
      assert.equal(own.replayed, 3, 'the 3 missed messages come first');

      // Mallory presents bob's pid and offset: not echoed, nothing of bob's replayed.
      const stolen = await handshake(mallory.accessToken, { pid, offset }, 'mallory, bob\'s pid');
      assert.notEqual(stolen.pid, pid, 'another user\'s pid is not echoed');
      assertRecovered(stolen.payload, false, 'another user\'s pid');
      assert.equal(stolen.replayed, 0);

      // A forged pid (one character changed) with bob's token and offset: not echoed, and
      // the offset is not honoured under it.
      const forgedPid = pid.slice(0, 3) + (pid[3] === 'A' ? 'B' : 'A') + pid.slice(4);
      assert.notEqual(forgedPid, pid);
      const forged = await handshake(bob.accessToken, { pid: forgedPid, offset }, 'bob, forged pid');
      assert.notEqual(forged.pid, forgedPid, 'a forged pid is not echoed');
      assertRecovered(forged.payload, false, 'forged pid');
      assert.equal(forged.replayed, 0);
      const garbage = await handshake(bob.accessToken, { pid: 'garbage', offset }, 'bob, garbage pid');
      assert.notEqual(garbage.pid, 'garbage');
      assertRecovered(garbage.payload, false, 'garbage pid');

      // Courier's own auth.offset, without a pid: recovered as before, under a fresh pid.
      const plain = await handshake(bob.accessToken, { offset }, 'bob, auth.offset');
      assertRecovered(plain.payload, true, 'auth.offset without a pid');
      assert.equal(plain.replayed, 3);
      assert.equal(typeof plain.pid, 'string');
      assert.ok(![pid, own.pid, stolen.pid, forged.pid, garbage.pid].includes(plain.pid), 'every new connection a new pid');
      assert.ok(compareOffsets(plain.payload.offset, offset) > 0);
    } finally {
      bobc.socket.close();
      for (const c of crafted) c.socket.close();
    }
  });
});

describe('RECOVERY_MAX_EVENTS=10, two gateways', () => {
  const d = useDeployment({ mode: 'split', gateways: 2, env: { RECOVERY_MAX_EVENTS: '10' } });

  d.test('past the retention: socket.recovered false, a new pid, session.recovered false; within it again: true', { timeout: 120_000 }, async () => {
    const [alice, bob] = await d.registerAll('alice', 'bob');
    const chat = await d.createDirect(alice.accessToken, bob.user.id);
    const watcher = await d.connect(1, alice.accessToken, { label: 'alice@gw2' });
    const bobc = stockClient(d.gateway(0), bob.accessToken, { label: 'bob@gw1' });
    try {
      await bobc.untilSessions(1, 10_000);
      await sendMany(d, alice.accessToken, 3, () => chat.id, 'before');
      await waitFor(() => bobc.news().length === 3, 10_000, { message: 'bob got 3' });

      // 30 events while away (> 10): the offset is past the retention.
      await killDuring(d, async () => {
        await sendMany(d, alice.accessToken, 30, () => chat.id, 'away');
        await savedAtLeast(watcher, 33);
      });
      await bobc.untilSessions(2);
      const miss = bobc.connects[1];
      assert.equal(miss.recovered, false, 'socket.recovered is false past the retention');
      assert.notEqual(miss.pid, bobc.connects[0].pid, 'a new pid');
      const told = bobc.recovereds()[1];
      assertRecovered(told.payload, false, 'past the retention');
      assert.equal(bobc.events.indexOf(told), miss.at, `nothing replayed before ${RECOVERED}`);
      assert.equal(bobc.news().length, 3);

      // The client reloads (chat.sync), then goes on; the new pid recovers the next gap.
      const sync = await bobc.socket.emitWithAck('chat.sync', { chats: { [chat.id]: 3 } });
      assert.deepEqual(sync.messages.map((m) => m.sequence), Array.from({ length: 30 }, (_, i) => i + 4));
      await d.send(alice.accessToken, chat.id, 'live');
      await waitFor(() => bobc.news().length === 4, 10_000, { message: 'bob got the live message' });
      await killDuring(d, async () => {
        await sendMany(d, alice.accessToken, 5, () => chat.id, 'short');
        await savedAtLeast(watcher, 39);
      });
      await bobc.untilSessions(3);
      assert.equal(bobc.connects[2].recovered, true, 'within the retention: recovered');
      assert.equal(bobc.connects[2].pid, miss.pid, 'the pid of the miss is echoed');
      assertRecovered(bobc.recovereds()[2].payload, true, '5 behind, cap 10');
      await waitFor(() => bobc.news().length === 9, 10_000, { message: () => `bob has ${bobc.news().length}/9` });
      assert.deepEqual(bobc.news().map((e) => e.payload.message.sequence), [1, 2, 3, 34, 35, 36, 37, 38, 39]);
      assertTrailingOffsets(bobc);
    } finally {
      bobc.socket.close();
    }
  });
});
