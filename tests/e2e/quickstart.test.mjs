// docs/quickstart.md, run as written: its shell blocks (register, log in, create a chat,
// send, look around) with bash, curl and jq, and its browser snippet with Node (the CDN
// import replaced by the socket.io-client package), against an all-in-one deployment in
// place of http://localhost:3000. Bob's snippet must print alice's message.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { useDeployment, waitFor } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GUIDE = readFileSync(path.join(HERE, '..', '..', 'docs', 'quickstart.md'), 'utf8');
const d = useDeployment({ mode: 'all-in-one' });

/** The fenced blocks of `lang` in the section whose heading starts with `## <n>.`. */
function blocks(n, lang) {
  const section = GUIDE.split(/^## /m).find((s) => s.startsWith(`${n}.`));
  assert.ok(section, `docs/quickstart.md has a section "## ${n}."`);
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

d.test('the quickstart works as written: bob\'s snippet prints the message alice sent with curl', { timeout: 60_000 }, async () => {
  const local = (text) => text.replaceAll('http://localhost:3000', d.apiUrl);
  const bash = (script) => promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script],
    { cwd: HERE, timeout: 30_000 });
  // Section 2, then print what section 3 and 4 need.
  const setup = `${local(blocks(2, 'sh').join('\n'))}\necho "VARS $BOB $CHAT"`;
  const { stdout } = await bash(setup);
  const [, bobToken, chatId] = stdout.match(/^VARS (\S+) (\S+)$/m) ?? assert.fail(`no tokens:\n${stdout}`);

  const [snippet] = blocks(3, 'js');
  assert.ok(snippet.includes("await import('https://cdn.socket.io/"), 'the snippet imports socket.io-client from its CDN');
  const code = local(snippet)
    .replace('PASTE BOB_TOKEN HERE', bobToken)
    .replace(/await import\('https:\/\/cdn\.socket\.io\/[^']+'\)/, "await import('socket.io-client')");
  const bob = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: HERE });
  let out = '';
  bob.stdout.on('data', (b) => { out += b; });
  bob.stderr.on('data', (b) => { out += b; });
  try {
    await waitFor(() => out.includes('connected as bob'), 10_000, { message: () => `bob's snippet:\n${out}` });
    const sent = await bash(`API=${d.apiUrl}; json='content-type: application/json'; ALICE=$(curl -s -X POST $API/auth/login -H "$json" -d '{"username": "alice", "password": "alice-password"}' | jq -r .accessToken); CHAT=${chatId}\n${local(blocks(4, 'sh').join('\n'))}`);
    assert.match(sent.stdout, /"brokerMessageId"/, `alice's send:\n${sent.stdout}`);
    await waitFor(() => out.includes(`#1 in ${chatId}: Hello Bob`), 10_000, { message: () => `bob's snippet:\n${out}` });
  } finally {
    bob.kill();
  }
  const look = await bash(`API=${d.apiUrl}; json='content-type: application/json'; BOB=${bobToken}; CHAT=${chatId}\n${local(blocks(5, 'sh').join('\n'))}`);
  assert.match(look.stdout, /"Hello Bob"/, 'history shows the message');
  assert.match(look.stdout, /"\/chats\/\{chatId\}\/messages"/, 'openapi paths listed');
  assert.match(look.stdout, /"chatMessageNew"/, 'asyncapi messages listed');
});
