// The viewer against `barton serve --auth`: the page asks for a login, gets a token from
// POST /auth/token and then loads the datastore image and model list with it.
// Usage: node viewer_auth_test.mjs PORT USER PASSWORD PLAYWRIGHT_CORE_DIR
import assert from 'node:assert/strict';
import path from 'node:path';

const [port, user, password, pwDir] = process.argv.slice(2);
const { chromium } = await import(path.join(pwDir, 'index.mjs'));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`http://127.0.0.1:${port}/viewer`);
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 60000 });
  await page.fill('#user', user);
  await page.fill('#password', 'wrong');
  await page.click('#login-button');
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('login failed'),
    null, { timeout: 30000 });
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForFunction(() => window.barton && (window.barton.ready || window.barton.error),
    null, { timeout: 120000 });
  const s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '', 'logged in, the viewer loaded');
  assert.ok(s.session.length > 0);
  console.log(`logged in as ${user}: ${s.image} loaded with model ${s.model}`);
} finally {
  await browser.close();
}
