// Access-token holder around the app's getToken(): caches the token, and refreshes it with a
// single flight (concurrent callers share one getToken() call; a refresh asked for a token
// that was already replaced returns the newer one instead of refreshing again).

export class TokenManager {
  #token: string | null = null;
  #inflight: Promise<string> | null = null;
  /** getToken() calls made, for diagnostics and tests. */
  calls = 0;

  constructor(private readonly getToken: () => Promise<string>) {}

  /** The cached token, or a fresh one. */
  current(): Promise<string> {
    if (this.#token !== null) return Promise.resolve(this.#token);
    return this.refresh();
  }

  /** The cached token without any call (null before the first). */
  peek(): string | null { return this.#token; }

  /**
   * A new token. `stale`: the token the caller found rejected or expiring; if the cache holds
   * another one already (someone refreshed meanwhile), that one is returned without a call.
   */
  refresh(stale?: string | null): Promise<string> {
    if (this.#inflight) return this.#inflight;
    if (stale !== undefined && stale !== null && this.#token !== null && this.#token !== stale) {
      return Promise.resolve(this.#token);
    }
    this.calls += 1;
    const flight = (async () => {
      try {
        const token = await this.getToken();
        if (typeof token !== 'string' || !token) throw new Error('getToken() returned no token');
        this.#token = token;
        return token;
      } finally {
        this.#inflight = null;
      }
    })();
    this.#inflight = flight;
    return flight;
  }
}

/** Seconds-since-epoch `exp` of a JWT, or null when it has none or is not a JWT. */
export function jwtExpiry(token: string): number | null {
  try {
    const part = token.split('.')[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = typeof atob === 'function' ? atob(b64) : '';
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}
