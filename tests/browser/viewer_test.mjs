// The viewer of `barton serve` in Debian's Chromium, headless, driven by Playwright: load a
// datastore volume at /viewer, click a foreground point inside the organ, wait for the model's
// mask, check from the page's own state that the label changed where it clicked, keep a
// screenshot, save the label and check the server answered with a new `final` version; then the
// next image, a brush stroke and its undo, and six extreme points for the DEXTR3D model.
// Usage: node viewer_test.mjs PORT IMAGE_ID I J K OUT_DIR PLAYWRIGHT_CORE_DIR EXTREMES_JSON
import assert from 'node:assert/strict';
import path from 'node:path';

const [port, imageId, i, j, k, outDir, pwDir, extremesJson] = process.argv.slice(2);
const { chromium } = await import(path.join(pwDir, 'index.mjs'));
const organ = [Number(i), Number(j), Number(k)];

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('console', (m) => console.log('page:', m.text()));
  page.on('pageerror', (e) => console.log('page error:', e.message));
  await page.goto(`http://127.0.0.1:${port}/viewer?image=${imageId}&model=deepgrow_3d`);
  await page.waitForFunction(() => window.barton && (window.barton.ready || window.barton.error),
    null, { timeout: 120000 });
  let s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '', 'the viewer loaded without an error');
  assert.equal(s.image, imageId);
  assert.ok(s.session.length > 0, 'the viewer opened a session');
  assert.equal(s.labelVoxels, 0, 'no label before the click');
  await page.screenshot({ path: path.join(outDir, 'viewer-loaded.png') });

  // A real mouse click where the organ's centre shows in the axial plane.
  const at = await page.evaluate((v) => window.bartonScreenOf(v), organ);
  await page.mouse.click(at.x, at.y);
  await page.waitForFunction(() => window.barton.requests >= 1 || window.barton.error, null,
    { timeout: 120000 });
  s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '', 'the click was answered');
  assert.deepEqual(s.clicks.foreground.length, 1);
  for (let d = 0; d < 3; d++)
    assert.ok(Math.abs(s.lastClick[d] - organ[d]) <= 1, `clicked voxel ${s.lastClick} near ${organ}`);
  assert.equal(s.labelAtLastClick, 1, 'the label covers the clicked voxel');
  assert.ok(s.labelVoxels > 0, 'the label changed');
  await page.screenshot({ path: path.join(outDir, 'viewer-click.png') });
  console.log(`clicked [${s.lastClick}], ${s.labelVoxels} labelled voxels`);

  await page.click('#save');
  await page.waitForFunction(() => window.barton.savedVersion !== null || window.barton.error, null,
    { timeout: 60000 });
  s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '', 'the label was saved');
  assert.ok(s.savedVersion >= 1, `saved version ${s.savedVersion}`);
  await page.screenshot({ path: path.join(outDir, 'viewer-saved.png') });
  console.log(`saved as final version ${s.savedVersion}`);

  // Next: the image without a final label (active learning, strategy "first") loads, unlabelled.
  await page.click('#next');
  await page.waitForFunction((first) => window.barton.error || (window.barton.image !== first &&
    !window.barton.busy), imageId, { timeout: 60000 });
  s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '');
  assert.notEqual(s.image, imageId, 'Next went to another image');
  assert.equal(s.labelVoxels, 0);

  // Brush: a stroke across the axial plane paints label voxels; Undo takes the stroke back.
  await page.click('#tool-brush');
  const a = await page.evaluate((v) => window.bartonScreenOf(v), organ);
  await page.mouse.move(a.x - 20, a.y);
  await page.mouse.down();
  for (let dx = -20; dx <= 20; dx += 4) await page.mouse.move(a.x + dx, a.y);
  await page.mouse.up();
  await page.waitForFunction(() => window.barton.labelVoxels > 0, null, { timeout: 30000 });
  const painted = await page.evaluate(() => window.barton.labelVoxels);
  await page.click('#undo');
  await page.waitForFunction(() => window.barton.labelVoxels === 0, null, { timeout: 30000 });
  console.log(`brush painted ${painted} voxels; undo cleared them`);

  // DEXTR3D: pick the annotation model, click the organ's six extreme points with the mouse (each
  // shown in its own axial slice); nothing is asked before the sixth, then one request.
  const extremes = JSON.parse(extremesJson);
  await page.selectOption('#model', 'dextr3d');
  await page.click('#tool-foreground');
  const before = await page.evaluate(() => window.barton.requests);
  for (const [n, p] of extremes.entries()) {
    const e = await page.evaluate((v) => window.bartonScreenOf(v), p);
    await page.mouse.click(e.x, e.y);
    if (n < 5) {
      await page.waitForFunction((m) => window.barton.clicks.foreground.length === m, n + 1,
        { timeout: 30000 });
      assert.equal(await page.evaluate(() => window.barton.requests), before,
        'no request before the sixth point');
    }
  }
  await page.waitForFunction((b) => window.barton.requests > b || window.barton.error, before,
    { timeout: 120000 });
  s = await page.evaluate(() => ({ ...window.barton }));
  assert.equal(s.error, '', 'the extreme points were answered');
  assert.equal(s.clicks.foreground.length, 6);
  for (const [n, p] of extremes.entries())
    for (let d = 0; d < 3; d++)
      assert.ok(Math.abs(s.clicks.foreground[n][d] - p[d]) <= 1,
        `extreme point ${s.clicks.foreground[n]} near ${p}`);
  assert.ok(s.labelVoxels > 0, 'DEXTR3D labelled the organ');
  await page.screenshot({ path: path.join(outDir, 'viewer-dextr3d.png') });
  console.log(`DEXTR3D from six points: ${s.labelVoxels} labelled voxels`);
} finally {
  await browser.close();
}
