// A flooding Socket.IO client, run as a child process by abuse-flood.test.mjs so the
// flood does not share an event loop with the measuring test. argv: gateway URL,
// token, chat id, socket count, events per second. It floods `chat.typing` and
// `chat.sync` at that rate (several times the per-socket limit; the attacker shares
// this machine's two cores with the server, so the rate is fixed rather than "as fast
// as possible") and, on "stop", reports {ok, limited, other, sent} ack counts.

import { io } from 'socket.io-client';

const [url, token, chatId, count, rate] = process.argv.slice(2);
const counts = { ok: 0, limited: 0, other: 0, sent: 0 };
let running = true;

const tally = (err, ack) => {
  if (err) counts.other += 1;
  else if (ack?.status === 'ok') counts.ok += 1;
  else if (ack?.status === 'error' && ack.code === 'rate_limited') counts.limited += 1;
  else counts.other += 1;
};

const sockets = await Promise.all(Array.from({ length: Number(count) }, () => new Promise((resolve, reject) => {
  const s = io(`${url}/chat`, { path: '/socket.io', transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
  s.once('connect', () => resolve(s));
  s.once('connect_error', reject);
})));

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

process.on('message', (m) => {
  if (m === 'stop') {
    running = false;
    clearInterval(timer);
    // Let the last acks arrive, then report.
    setTimeout(() => {
      process.send(counts, () => {
        for (const s of sockets) s.close();
        process.exit(0);
      });
    }, 500);
  }
});
process.send('flooding');
