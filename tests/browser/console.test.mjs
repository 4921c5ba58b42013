// The console in a real browser: Debian's headless Chromium driven by Playwright, against the
// real `vigie` binary on a fresh SQLite store. Screenshots of the main pages are kept in
// target/browser-artifacts/ (the test command prints where).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const VIGIE = process.env.VIGIE_BIN || path.join(root, "target/debug/vigie");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS_DIR || path.join(root, "target/browser-artifacts");
const PASSWORD = "a-long-enough-password";
const ROLES = ["admin", "operator", "manager", "oncall", "user"];

// DOMAIN.md's default menu matrix: the navigation entries (with a page) each role sees.
const MATRIX = {
  "admin.users": ["admin"],
  "admin.menus": ["admin"],
  "admin.oncall.planning": ROLES,
  "admin.oncall.edit": ["admin"],
  "admin.sources": ["admin"],
  "admin.security": ["admin"],
  "admin.audit": ["admin"],
  "admin.notifications": ["admin"],
  "incidents.archives": ["operator"],
  "supervision.apps": ["operator", "manager"],
  "supervision.equipment": ["operator", "manager"],
  "supervision.unavailability": ["operator", "manager"],
  "supervision.equipment_edit": ["operator"],
  "supervision.statistics": ["operator", "manager"],
  "supervision.reports": ["operator", "manager"],
  "supervision.equipment_admin": ["manager"],
  "supervision.logs": ["operator", "manager"],
  "supervision.hosts": ["operator", "manager"],
  "alerts.list": ["operator", "manager"],
  "alerts.search": ["operator", "manager"],
  "incidents.open": ["operator", "manager", "oncall", "user"],
  "incidents.list": ["operator", "manager", "oncall", "user"],
  "kb": ["operator", "manager", "oncall", "user"],
};
const expectedMenus = (role) =>
  Object.entries(MATRIX).filter(([, roles]) => roles.includes(role)).map(([code]) => code).sort();

const dir = mkdtempSync(path.join(tmpdir(), "vigie_test_browser_"));
const hubEnv = {
  PATH: process.env.PATH,
  VIGIE_DATABASE_URL: `sqlite://${dir}/vigie.db`,
  VIGIE_DATA_DIR: path.join(dir, "data"),
  VIGIE_HTTP_LISTEN: "127.0.0.1:0",
  VIGIE_SYSLOG_LISTEN: "127.0.0.1:0",
  VIGIE_LOG: "info",
};
let hub;
let base;
let browser;

function vigie(args, input) {
  const r = spawnSync(VIGIE, args, { env: hubEnv, input, encoding: "utf8" });
  assert.equal(r.status, 0, `vigie ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function startHub() {
  return new Promise((resolve, reject) => {
    const child = spawn(VIGIE, ["serve"], { env: hubEnv, stdio: ["ignore", "pipe", "pipe"] });
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`the hub did not start:\n${seen}`)), 60_000);
    const read = (chunk) => {
      seen += chunk.toString();
      const m = seen.replace(/\x1b\[[0-9;]*m/g, "").match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => reject(new Error(`the hub exited (${code}):\n${seen}`)));
  });
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const role of ROLES) {
    vigie(["user", "create", "--login", `b-${role}`, "--role", role, "--password-stdin"], `${PASSWORD}\n`);
  }
  for (const login of ["b-twice", "b-csrf", "b-phone", "b-board"]) {
    vigie(["user", "create", "--login", login, "--role", "operator", "--password-stdin"], `${PASSWORD}\n`);
  }
  const started = await startHub();
  hub = started.child;
  base = started.url;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
  hub?.kill("SIGTERM");
});

async function newPage(options = {}) {
  const context = await browser.newContext({ locale: "en-US", ...options });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(msg.text());
  });
  page.on("pageerror", (err) => problems.push(err.message));
  return { context, page, problems };
}

async function login(page, login) {
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login\?next=/);
  await page.fill("#f-login", login);
  await page.fill("#f-password", PASSWORD);
  await Promise.all([page.waitForLoadState("load"), page.click("[data-test=login-submit]")]);
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

test("each role logs in, sees exactly its menus, and logs out", async () => {
  for (const role of ROLES) {
    const { context, page, problems } = await newPage();
    await shot(page, "login").catch(() => {});
    await login(page, `b-${role}`);
    assert.equal(new URL(page.url()).pathname, "/", `${role} lands on the home page`);
    assert.equal(await page.textContent("[data-test=user-role]"), {
      admin: "Administrator", operator: "Operator", manager: "Manager", oncall: "On-call", user: "Simple user",
    }[role]);
    const menus = (await page.$$eval("nav [data-menu]", (els) => els.map((e) => e.dataset.menu))).sort();
    assert.deepEqual(menus, expectedMenus(role), `menus of ${role}`);
    await shot(page, `home-${role}`);
    // Every page a menu leads to opens (no 403 behind a visible menu).
    for (const href of await page.$$eval("nav [data-menu]", (els) => els.map((e) => e.getAttribute("href")))) {
      const response = await page.goto(`${base}${href}`);
      assert.equal(response.status(), 200, `${role} opens ${href}`);
    }
    await page.goto(`${base}/`);
    await Promise.all([page.waitForURL(/\/login\?bye=1/), page.click("[data-test=logout]")]);
    const again = await page.goto(`${base}/account`);
    assert.match(page.url(), /\/login\?next=%2Faccount/, "logged out for good");
    assert.equal(again.status(), 200);
    assert.deepEqual(problems, [], "no script error, no CSP violation");
    await context.close();
  }
});

test("a second login asks whether to continue there, and ending the first session shows it", async () => {
  const first = await newPage();
  await login(first.page, "b-twice");
  assert.equal(new URL(first.page.url()).pathname, "/");
  const second = await newPage();
  await login(second.page, "b-twice");
  assert.match(second.page.url(), /\/login\/confirm/);
  await second.page.waitForSelector("[data-test=already-connected]");
  await shot(second.page, "already-connected");
  await Promise.all([second.page.waitForURL(`${base}/`), second.page.click("[data-test=continue-here]")]);
  await first.page.goto(`${base}/`);
  assert.match(first.page.url(), /\/login\?next=.*expired=1/);
  await first.page.waitForSelector("[data-test=notice]");
  await first.context.close();
  await second.context.close();
});

test("a state-changing request without the CSRF token is refused", async () => {
  const { context, page } = await newPage();
  await login(page, "b-csrf");
  await page.goto(`${base}/account`);
  const status = await page.evaluate(async () => {
    const r = await fetch("/account", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "lang=fr&timezone=Europe%2FParis",
      redirect: "manual",
    });
    return `${r.status} ${r.type}`;
  });
  assert.equal(status, "403 basic");
  const withToken = await page.evaluate(async () => {
    const token = document.querySelector("input[name=_csrf]").value;
    const r = await fetch("/account", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `_csrf=${encodeURIComponent(token)}&lang=en&timezone=Europe%2FParis`,
      redirect: "manual",
    });
    return r.type === "opaqueredirect" ? 303 : r.status;
  });
  assert.equal(withToken, 303, "the same post with the token goes through");
  await page.goto(`${base}/account`);
  assert.equal(await page.inputValue("#f-timezone"), "Europe/Paris");
  await context.close();
});

test("the administrator's pages render, and the user form follows the chosen role", async () => {
  const { context, page, problems } = await newPage();
  await login(page, "b-admin");
  await page.goto(`${base}/admin/users`);
  await page.waitForSelector("[data-test=users-table]");
  await shot(page, "admin-users");
  await page.goto(`${base}/admin/users/new`);
  await page.selectOption("#f-role", "manager");
  assert.equal(await page.isVisible("[data-menu-code='admin.users']"), false, "not offered to a manager");
  assert.equal(await page.isChecked("[data-menu-code='supervision.equipment_admin']"), true, "a manager default");
  await page.selectOption("#f-role", "admin");
  assert.equal(await page.isVisible("[data-menu-code='admin.users']"), true);
  await shot(page, "admin-user-form");
  await page.goto(`${base}/admin/menus`);
  await page.waitForSelector("[data-test=menus-table]");
  await shot(page, "admin-menus");
  await page.goto(`${base}/admin/audit`);
  const actions = await page.$$eval("[data-action]", (rows) => rows.map((r) => r.dataset.action));
  assert.ok(actions.includes("auth.login"), `logins are in the audit log: ${actions}`);
  await shot(page, "admin-audit");
  await page.goto(`${base}/account/totp`);
  assert.ok(await page.isVisible(".qr svg"), "the enrolment QR code is drawn");
  await shot(page, "account-totp");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a pushed alert appears on an operator's board without reloading", async () => {
  const token = vigie(["token", "create", "--login", "b-board"]).trim();
  const { context, page, problems } = await newPage();
  await login(page, "b-board");
  await page.goto(`${base}/alerts`);
  await page.waitForSelector("[data-test=live-state].live");
  const pushed = await fetch(`${base}/api/v1/alerts`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ source: "browser-test", resource: "core-rtr-9", message: "BGP session down", severity: 2 }),
  });
  assert.equal(pushed.status, 202);
  const row = page.locator("#board tbody tr", { hasText: "core-rtr-9" });
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.getAttribute("class"), /level-2/);
  await page.waitForSelector("#counts [data-severity='2']");
  await shot(page, "alert-board");
  // Acknowledged from its page, it stays on the board with its new state.
  await row.locator("a").click();
  await page.waitForSelector("[data-test=alert-state]");
  await Promise.all([page.waitForLoadState("load"), page.click("[data-test=ack]")]);
  assert.match(await page.textContent("[data-test=alert-history]"), /b-board/);
  await shot(page, "alert-detail");
  assert.deepEqual(problems, []);
  await context.close();
});

test("on a phone the navigation folds behind its button", async () => {
  const { context, page } = await newPage({ viewport: { width: 390, height: 844 } });
  await login(page, "b-phone");
  assert.equal(await page.isVisible("nav [data-menu='alerts.list']"), false);
  await page.click("[data-toggle=nav]");
  assert.equal(await page.isVisible("nav [data-menu='alerts.list']"), true);
  await shot(page, "phone-home");
  await context.close();
});
