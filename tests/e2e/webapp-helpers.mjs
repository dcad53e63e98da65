// Helpers of the demo web app's browser test (webapp.test.mjs): the built app (built by
// scripts/build-web.sh when missing), Debian's Chromium driven by playwright-core (never a
// downloaded browser), a deployment serving the app (WEB_APP_DIR) whose gateways accept
// the page's origin (CORS_ORIGINS), one `WebUser` per browser context with the page
// actions and DOM reads the test needs, and the artefact folder (screenshots, traces).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { Deployment } from './deployment.mjs';
import { PASSWORD } from './settings.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
export const APP_DIR = path.join(REPO, 'clients/web/dist');
export const ARTIFACTS = path.join(HERE, 'artifacts/webapp');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Builds the app with scripts/build-web.sh if dist/ is missing; fails with what to run. */
export function ensureAppBuilt() {
  const files = ['index.html', 'app.js', 'app.css'].map((f) => path.join(APP_DIR, f));
  if (files.every(existsSync)) return;
  const built = spawnSync('bash', [path.join(REPO, 'scripts/build-web.sh')], { cwd: REPO, encoding: 'utf8' });
  assert.ok(built.status === 0 && files.every(existsSync),
    `the demo web app is not built (${APP_DIR}) and building it failed: run scripts/build-web.sh\n${built.stdout ?? ''}${built.stderr ?? ''}`);
}

/** Fresh artefact folder for this run (screenshots, and traces of failures). */
export function freshArtifacts() {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

export async function launchChromium() {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium (scripts/browser.sh)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A split deployment whose api serves the built app and whose gateways accept its origin. */
export class WebDeployment extends Deployment {
  env(overrides = {}) {
    return { ...super.env(overrides), WEB_APP_DIR: APP_DIR, CORS_ORIGINS: `http://127.0.0.1:${this.ports.PORT}` };
  }
}

/** One user's browser context and page, with the app's actions and DOM reads. */
export class WebUser {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.consoleErrors = [];
    page.on('pageerror', (err) => this.consoleErrors.push(String(err)));
  }

  static async open(browser, name, url) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 680 } });
    await context.tracing.start({ screenshots: true, snapshots: true });
    const page = await context.newPage();
    const user = new WebUser(name, context, page);
    await page.goto(url);
    return user;
  }

  /** Registers through the form; waits until the chat screen is ready. */
  async register(username, displayName) {
    const { page } = this;
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Display name (when registering)').fill(displayName);
    await page.getByLabel('Password (at least 8 characters)').fill(PASSWORD);
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#root[data-ready="true"]').waitFor();
    this.username = username;
  }

  /** The session the app keeps (tokens, user). */
  session() {
    return this.page.evaluate(() => JSON.parse(sessionStorage.getItem('courier.session')));
  }

  async shot(step) {
    await this.page.screenshot({ path: path.join(ARTIFACTS, `${step}-${this.name}.png`) });
  }

  /** Types `text` in the composer and presses Enter. */
  async send(text) {
    const input = this.page.getByRole('textbox', { name: 'Message', exact: true });
    await input.fill(text);
    await input.press('Enter');
  }

  /** The list item of the message whose text is `text` (exact). */
  message(text) {
    return this.page.locator('#messages > li.msg').filter({ has: this.page.locator('p.content', { hasText: new RegExp(`^${escapeRe(text)}$`) }) });
  }

  /** Hovers a message (its actions show on hover) and clicks one of its action buttons. */
  async act(text, button) {
    const item = this.message(text);
    await item.hover();
    await item.getByRole('button', { name: button, exact: true }).click();
  }

  /** [{seq, content, status, pending}] of the messages in DOM order. */
  listed() {
    return this.page.$$eval('#messages > li.msg', (items) => items.map((li) => ({
      seq: li.dataset.seq ? Number(li.dataset.seq) : null,
      content: li.querySelector('p.content')?.textContent ?? '',
      status: li.dataset.status ?? null,
      pending: li.classList.contains('pending'),
    })));
  }

  /** Waits until the DOM lists exactly `contents` in this order (each once, none pending). */
  async waitListed(contents, timeout = 30_000) {
    await this.page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('#messages > li.msg')].map((li) => (li.classList.contains('pending') ? '(pending)' : '') + (li.querySelector('p.content')?.textContent ?? ''));
      return JSON.stringify(got) === JSON.stringify(want);
    }, contents, { timeout, polling: 100 }).catch(async (err) => {
      throw new Error(`${this.name}'s list is not ${JSON.stringify(contents)}: ${JSON.stringify(await this.listed())} (${err.message.split('\n')[0]})`);
    });
  }

  /** Stops tracing; keeps the trace (as <name>-trace.zip) only when `keep`. */
  async close(keep) {
    await this.context.tracing.stop(keep ? { path: path.join(ARTIFACTS, `${this.name}-trace.zip`) } : {}).catch(() => {});
    await this.context.close().catch(() => {});
  }
}

export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Accessibility checks of what the page shows now: every visible control has an accessible
 * name (a label, aria-label(ledby) or text), and every visible text meets WCAG AA contrast
 * (4.5:1, 3:1 for large text) against the first opaque background behind it. Returns the
 * problems found (empty when none).
 */
export function a11yProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    for (const el of document.querySelectorAll('button, input, textarea, select, a[href]')) {
      if (!visible(el) && !(el.type === 'file')) continue;
      const named = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
        || (el.tagName !== 'INPUT' && el.tagName !== 'TEXTAREA' && el.textContent.trim());
      if (!named) problems.push(`no accessible name: ${el.outerHTML.slice(0, 120)}`);
    }
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || seen.has(el) || !visible(el) || el.closest('[aria-hidden="true"], .visually-hidden, :disabled')) continue;
      seen.add(el);
      const style = getComputedStyle(el);
      if (Number(style.opacity) === 0 || el.closest('.actions') && getComputedStyle(el.closest('.actions')).opacity === '0') continue;
      const [l1, l2] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 40)}" (${style.color})`);
    }
    return problems;
  });
}
