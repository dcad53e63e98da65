// REST calls: JSON with the bearer token from the TokenManager, one refresh-and-retry on 401,
// errors as CourierError (status 0 for a network failure).

import { CourierError, errorFromResponse } from './errors.js';
import type { TokenManager } from './tokens.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

async function parse(res: Response): Promise<any> {
  if (res.status === 204) return undefined;
  const text = await res.text();
  if (!text) return undefined;
  try { return JSON.parse(text); } catch { return text; }
}

async function call(fetchFn: FetchLike, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetchFn(url, init);
  } catch (err) {
    throw new CourierError(0, 'network', `${init.method ?? 'GET'} ${url}: ${(err as Error)?.message ?? err}`);
  }
}

export class Rest {
  constructor(readonly baseUrl: string, private readonly tokens: TokenManager, private readonly fetchFn: FetchLike) {}

  #url(path: string): string { return `${this.baseUrl.replace(/\/$/, '')}${path}`; }

  /** A JSON request; resolves the parsed body (undefined for 204). */
  async json(method: string, path: string, body?: unknown): Promise<any> {
    let token = await this.tokens.current();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await call(this.fetchFn, this.#url(path), {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
      const parsed = await parse(res);
      if (res.ok) return parsed;
      if (res.status === 401 && attempt === 0 && parsed?.code !== 'session_revoked') {
        token = await this.tokens.refresh(token);
        continue;
      }
      throw errorFromResponse(res.status, parsed, res.headers.get('retry-after'));
    }
  }

  /** A PUT of raw bytes to a presigned URL (no bearer token). */
  async put(url: string, method: string, headers: Record<string, string>, body: BodyInit): Promise<void> {
    const res = await call(this.fetchFn, url, { method, headers, body });
    if (!res.ok) throw errorFromResponse(res.status, await parse(res), res.headers.get('retry-after'));
  }

  /** A request without a token (register, login, refresh). */
  static async anonymous(baseUrl: string, method: string, path: string, body: unknown, fetchFn?: FetchLike): Promise<any> {
    const f = fetchFn ?? globalThis.fetch.bind(globalThis);
    const res = await call(f, `${baseUrl.replace(/\/$/, '')}${path}`, {
      method, headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body),
    });
    const parsed = await parse(res);
    if (!res.ok) throw errorFromResponse(res.status, parsed, res.headers.get('retry-after'));
    return parsed;
  }
}
