// The signed-in session: the token pair kept in sessionStorage (per tab, so two tabs never
// race on the single-use refresh token), and `getToken` for the SDK, which hands out the
// stored access token first and refreshed ones (CourierClient.refresh) afterwards.

import { CourierClient } from '@courier-chat/client';

const KEY = 'courier.session';
/** Refresh when the access token has less than this left. */
const MARGIN_MS = 60_000;

/**
 * @typedef {{accessToken: string, refreshToken: string, expiresAt: number, user: any}} Session
 */

/** @returns {Session | null} */
export function loadSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** Stores an AuthResponse (`{accessToken, refreshToken, expiresIn, user}`); returns the Session. */
export function saveAuth(auth) {
  const session = {
    accessToken: auth.accessToken,
    refreshToken: auth.refreshToken,
    expiresAt: tokenExpiry(auth.accessToken) ?? Date.now() + (auth.expiresIn ?? 900) * 1000,
    user: auth.user,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** The `exp` claim of a JWT in ms, or null. */
function tokenExpiry(jwt) {
  try {
    const payload = JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * A `getToken` for CourierClient. The SDK caches the token and calls this again only when
 * it needs a new one (before `auth.expiring`, on 401 or `unauthorized`, at a reconnect
 * with an expiring token): so the first call gets the stored access token if it has more
 * than a minute left, and every later call a refreshed one (one refresh at a time).
 * `onSignedOut` runs when the refresh token is refused (the session ended elsewhere).
 * @param {string} baseUrl
 * @param {() => void} onSignedOut
 * @returns {() => Promise<string>}
 */
export function tokenSource(baseUrl, onSignedOut) {
  let inFlight = null;
  let handedOut = null;
  return async () => {
    const session = loadSession();
    if (!session) {
      onSignedOut();
      throw new Error('signed out');
    }
    if (session.accessToken !== handedOut && session.expiresAt - Date.now() > MARGIN_MS) {
      handedOut = session.accessToken;
      return handedOut;
    }
    inFlight ??= CourierClient.refresh(baseUrl, session.refreshToken)
      .then((auth) => { handedOut = saveAuth(auth).accessToken; return handedOut; })
      .catch((err) => {
        if (err?.status === 401 || err?.status === 403) {
          clearSession();
          onSignedOut();
        }
        throw err;
      })
      .finally(() => { inFlight = null; });
    return inFlight;
  };
}
