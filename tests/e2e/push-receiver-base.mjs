// The common part of the push test receivers (push-receivers.mjs, push-fcm.mjs): a local
// HTTP server on 127.0.0.1, the verified requests it recorded, the refused ones
// (`failures`), per-key plans of answers, and `waitFor` woken on every receipt.

import http from 'node:http';

const MAX_BODY = 64 * 1024;

export const nowSecs = () => Math.floor(Date.now() / 1000);

/** A plan entry: a status number, or {status, retryAfter?, body?}. */
const normalize = (entry) => (typeof entry === 'number' ? { status: entry } : { ...entry });

/** Why a request is refused: the status to answer and the reason recorded. */
export class Refusal extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Refusal(413, `body over ${MAX_BODY} bytes`)); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The common part: server, records, failures, plans and waiters. */
export class Receiver {
  #waiters = new Set();
  #plans = new Map();

  constructor(kind) {
    this.kind = kind;
    /** Every verified request, in arrival order (whatever was answered). */
    this.requests = [];
    /** Every refused request: {reason, method, path, at}. */
    this.failures = [];
  }

  async listen() {
    this.server = http.createServer((req, res) => {
      this.#serve(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500).end(String(err.message));
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async #serve(req, res) {
    const url = new URL(req.url, this.origin);
    try {
      const body = await readBody(req);
      const answer = await this.handle(req, url, body);
      this.#wake();
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.failures.push({ reason: err.message, method: req.method, path: url.pathname, at: Date.now() });
      this.#wake();
      res.writeHead(err.status, { 'content-type': 'application/json' })
        .end(JSON.stringify(this.refusalBody(err)));
    }
  }

  refusalBody(err) { return { error: err.message }; }

  /** Programs the next answers for `key` (a subscription or a token): consumed in order, then the default. */
  plan(key, entries) { this.#plans.set(this.keyOf(key), entries.map(normalize)); }

  nextAnswer(key, fallback) { return this.#plans.get(key)?.shift() ?? normalize(fallback); }

  /** Resolves with `predicate()`'s first truthy value, checked now and on every receipt. */
  waitFor(predicate, timeoutMs = 15_000, { message, failFast = true } = {}) {
    return new Promise((resolve, reject) => {
      const failuresBefore = this.failures.length;
      const waiter = () => {
        if (failFast && this.failures.length > failuresBefore) {
          return finish(new Error(`${this.kind} receiver refused a request: ${JSON.stringify(this.failures.at(-1))}`));
        }
        let value;
        try { value = predicate(); } catch (err) { return finish(err); }
        if (value) finish(null, value);
        return undefined;
      };
      const timer = setTimeout(() => {
        const what = typeof message === 'function' ? message() : (message ?? String(predicate));
        finish(new Error(`${this.kind} receiver: timed out after ${timeoutMs} ms waiting for ${what}`
          + ` (${this.requests.length} requests, ${this.failures.length} failures)`));
      }, timeoutMs);
      const finish = (err, value) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (err) reject(err); else resolve(value);
      };
      this.#waiters.add(waiter);
      waiter();
    });
  }

  /** Resolves `list()` once it holds at least `n` entries. */
  waitForCount(list, n, timeoutMs, what) {
    return this.waitFor(() => list().length >= n && list(), timeoutMs,
      { message: () => `${n} ${what} (have ${list().length})` });
  }

  #wake() { for (const w of [...this.#waiters]) w(); }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
