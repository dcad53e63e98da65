// The connection banner, driven by the SDK's state events: hidden while connected; after a
// first connection, "reconnecting…" while connecting or disconnected (waiting to retry), or
// "offline" when the browser is, with the number of messages waiting in the outbox.
// `data-state` mirrors the SDK's state.

/**
 * @param {import('@courier-chat/client').CourierClient} client
 * @param {HTMLElement} el the #banner element (role=status)
 * @returns {() => void} unsubscribe
 */
export function connectBanner(client, el) {
  let everConnected = false;
  const render = () => {
    const state = client.state;
    if (state === 'connected') everConnected = true;
    const waiting = client.outbox().filter((e) => e.state === 'sending' || e.state === 'failed').length;
    el.dataset.state = state;
    if (state === 'connected' || !everConnected) {
      el.hidden = true;
      el.textContent = '';
      return;
    }
    const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
    const text = offline
      ? 'You are offline: messages will be sent when the network is back.'
      : 'Connection lost: reconnecting…';
    el.textContent = waiting ? `${text} ${waiting} message${waiting === 1 ? '' : 's'} waiting.` : text;
    el.hidden = false;
  };
  const offState = client.on('state', render);
  const offOutbox = client.on('outbox', render);
  render();
  return () => { offState(); offOutbox(); };
}
