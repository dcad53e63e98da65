// A flooding Socket.IO client, run as a child process by abuse-flood.test.mjs so the
// flood does not share an event loop with the measuring test. argv: gateway URL,
// token, chat id, socket count, events per second. It floods `chat.typing` and
// `chat.sync` at that rate (several times the per-socket limit; the attacker shares
// this machine's two cores with the server, so the rate is fixed rather than "as fast
// as possible") and, on {stop, minMs}, keeps flooding until it has flooded for at least
// minMs, waits for every ack, and reports {ok, limited, other, sent, ms} (ms: how long
// it flooded).

import { io } from 'socket.io-client';

const [url, token, chatId, count, rate] = process.argv.slice(2);
const counts = { ok: 0, limited: 0, other: 0, sent: 0, ms: 0 };
let running = true;
let onAck = () => {};

const tally = (err, ack) => {
  if (err) counts.other += 1;
  else if (ack?.status === 'ok') counts.ok += 1;
  else if (ack?.status === 'error' && ack.code === 'rate_limited') counts.limited += 1;
  else counts.other += 1;
  onAck();
};

const sockets = await Promise.all(Array.from({ length: Number(count) }, () => new Promise((resolve, reject) => {
  const s = io(`${url}/chat`, { path: '/socket.io', transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  s.once('connect', () => resolve(s));
  s.once('connect_error', reject);
})));

const started = Date.now();
const TICK_MS = 10;
const perTick = Math.max(1, Math.round((Number(rate) * TICK_MS) / 1000));
let next = 0;
const timer = setInterval(() => {
  if (!running) return;
  for (let i = 0; i < perTick; i += 1) {
    const s = sockets[next % sockets.length];
    next += 1;
    counts.sent += 1;
    // Acks without a client-side timer each: the flood's own CPU stays small.
    const ack = (res) => tally(null, res);
    if (next % 2) s.emit('chat.typing', { chatId, isTyping: true }, ack);
    else s.emit('chat.sync', { chats: { [chatId]: 0 } }, ack);
  }
}, TICK_MS);

const acked = () => counts.ok + counts.limited + counts.other === counts.sent;

function report() {
  process.send(counts, () => {
    for (const s of sockets) s.close();
    process.exit(0);
  });
}

function stop() {
  running = false;
  clearInterval(timer);
  counts.ms = Date.now() - started;
  // Report once every event sent has its ack (or after 10 s without them all: the
  // counts then show the missing acks).
  if (acked()) report();
  else {
    onAck = () => { if (acked()) report(); };
    setTimeout(report, 10_000);
  }
}

process.on('message', (m) => {
  if (m?.stop) setTimeout(stop, Math.max(0, m.minMs - (Date.now() - started)));
});
process.send('flooding');
