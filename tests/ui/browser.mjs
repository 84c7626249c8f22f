// A headless Chromium (Debian's, driven by playwright-core from ui/'s npm
// packages) that takes one step at a time from stdin and answers each on
// stdout, so that a cluster test (tests/cluster/test_ui.py) drives the web
// UI between its own steps (power off a node, check `herd status`).
//
//   stdin:  {"op": "...", ...}            one JSON object per line
//   stdout: {"ok": true, "value": ...}    or {"ok": false, "error": "..."}
//
// Pages are named by the test ("n1", "n2", "aud"): each has a browser
// context of its own (own cookies).  Elements are found by data-testid.
// Every wait has a timeout (ms, default 15000) and fails with what the page
// showed instead.  Chromium gets a fresh profile (playwright's own
// temporary --user-data-dir) and no background networking.
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ui = join(here, '..', '..', 'ui');
const { chromium } = await import(pathToFileURL(join(ui, 'node_modules', 'playwright-core', 'index.mjs')).href);

const shots = process.env.HERD_UI_SHOTS || tmpdir();
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.HERD_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const pages = new Map(); // name -> { context, page, console: [] }

const T = (m) => m.timeout ?? 15000;
const byId = (p, id) => p.page.locator(`[data-testid="${id}"]`);

function pageOf(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page '${name}' (open it first)`);
  return p;
}

// Wait until fn() is true (polled); the error says what was seen last.
async function until(fn, timeout, what) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const r = await fn();
      if (r.ok) return r.value;
      last = r.seen;
    } catch (e) {
      last = e.message.split('\n')[0];
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeout} ms (last seen: ${JSON.stringify(last)})`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const ops = {
  async open(m) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const entry = { context, page, console: [] };
    page.on('console', (msg) => {
      if (msg.type() === 'error') entry.console.push(msg.text());
    });
    page.on('pageerror', (err) => entry.console.push(`page error: ${err.message}`));
    pages.set(m.page, entry);
    await page.goto(m.url, { timeout: T(m) });
    return page.url();
  },
  async goto(m) {
    const p = pageOf(m.page);
    const url = new URL(m.path, p.page.url()).href;
    await p.page.goto(url, { timeout: T(m) });
    return p.page.url();
  },
  async fill(m) {
    await pageOf(m.page).page.locator(m.selector).fill(m.value, { timeout: T(m) });
  },
  async click(m) {
    const p = pageOf(m.page);
    const loc = m.testid ? byId(p, m.testid) : p.page.locator(m.selector);
    await loc.click({ timeout: T(m) });
  },
  // Choose the option whose value is m.value in a <select> (a change event,
  // as a user's choice makes).
  async select(m) {
    const p = pageOf(m.page);
    const loc = m.testid ? byId(p, m.testid) : p.page.locator(m.selector);
    return loc.selectOption(m.value, { timeout: T(m) });
  },
  // Put the file at m.path (on this host) into a file input.
  async upload(m) {
    await pageOf(m.page).page.locator(m.selector).setInputFiles(m.path, { timeout: T(m) });
  },
  async press(m) {
    await pageOf(m.page).page.locator(m.selector).press(m.key, { timeout: T(m) });
  },
  async text(m) {
    return (await byId(pageOf(m.page), m.testid).innerText({ timeout: T(m) })).trim();
  },
  async attr(m) {
    return byId(pageOf(m.page), m.testid).getAttribute(m.name, { timeout: T(m) });
  },
  // Texts of several testids at once (a consistent reading of the dashboard).
  async texts(m) {
    const p = pageOf(m.page);
    await byId(p, m.testids[0]).waitFor({ timeout: T(m) });
    const out = {};
    for (const id of m.testids) {
      const loc = byId(p, id);
      out[id] = (await loc.count()) ? (await loc.first().innerText()).trim() : null;
    }
    return out;
  },
  async count(m) {
    return pageOf(m.page).page.locator(m.selector).count();
  },
  async wait_text(m) {
    const p = pageOf(m.page);
    return until(async () => {
      const t = (await byId(p, m.testid).innerText({ timeout: 1000 })).trim();
      const ok = m.equals !== undefined ? t === m.equals : t.includes(m.contains);
      return { ok, value: t, seen: t };
    }, T(m), `${m.page}: [${m.testid}] to ${m.equals !== undefined ? `be "${m.equals}"` : `contain "${m.contains}"`}`);
  },
  async wait_visible(m) {
    const p = pageOf(m.page);
    const loc = m.testid ? byId(p, m.testid) : p.page.locator(m.selector);
    await loc.first().waitFor({ state: 'visible', timeout: T(m) });
  },
  async wait_url(m) {
    const p = pageOf(m.page);
    return until(async () => {
      const path = new URL(p.page.url()).pathname;
      return { ok: path === m.path, value: path, seen: path };
    }, T(m), `${m.page}: the URL's path to be ${m.path}`);
  },
  async scroll(m) {
    const p = pageOf(m.page);
    await byId(p, m.testid).evaluate((el, top) => {
      el.scrollTop = top;
      el.dispatchEvent(new Event('scroll'));
    }, m.top);
  },
  async eval(m) {
    return pageOf(m.page).page.evaluate(m.js);
  },
  async fetch(m) {
    // A request from the page itself (its cookie, its origin).
    return pageOf(m.page).page.evaluate(async ({ path, method, headers, body }) => {
      const r = await fetch(path, { method, headers, body, credentials: 'same-origin' });
      return { status: r.status, headers: Object.fromEntries(r.headers.entries()), text: await r.text() };
    }, { path: m.path, method: m.method || 'GET', headers: m.headers || {}, body: m.body });
  },
  // The page (m.full: all of it, else what is in view), or only the element
  // m.testid (a section: readable at its own size).
  async screenshot(m) {
    const file = join(shots, `${m.name}.png`);
    const p = pageOf(m.page);
    if (m.testid) await byId(p, m.testid).screenshot({ path: file, timeout: T(m) });
    else await p.page.screenshot({ path: file, fullPage: !!m.full });
    return file;
  },
  async console(m) {
    return pageOf(m.page).console;
  },
  async close(m) {
    const p = pages.get(m.page);
    if (p) await p.context.close();
    pages.delete(m.page);
  },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let m;
  let answer;
  try {
    m = JSON.parse(line);
    if (!ops[m.op]) throw new Error(`unknown op '${m.op}'`);
    answer = { ok: true, value: (await ops[m.op](m)) ?? null };
  } catch (e) {
    answer = { ok: false, error: e.message.split('\n').slice(0, 3).join(' ') };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await browser.close();
