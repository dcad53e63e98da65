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
