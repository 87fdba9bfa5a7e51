// The viewer of `barton serve` (/viewer): a datastore image in three planes and a 3D rendering
// (NiiVue), an automatic model, DeepGrow clicks, brush and eraser, undo, and saving the label to
// the datastore as a new `final` version. Everything it calls is the server's own HTTP API.
import { Niivue, NVImage, SHOW_RENDER, SLICE_TYPE } from '@niivue/niivue';

const $ = (id) => document.getElementById(id);

// The page's own state, read by people (the status line) and by the browser test.
const state = {
  ready: false,
  busy: false,
  error: '',
  image: '',
  model: '',
  session: '',
  tool: 'foreground',
  clicks: { foreground: [], background: [] },
  lastClick: null, // [i, j, k] voxel of the image as loaded
  labelAtLastClick: null, // the label's value there after the model answered
  labelVoxels: 0,
  savedVersion: null,
  requests: 0,
};
window.barton = state;

const nv = new Niivue({
  backColor: [0.07, 0.07, 0.07, 1],
  show3Dcrosshair: true,
  multiplanarShowRender: SHOW_RENDER.ALWAYS,
  forceDevicePixelRatio: 1,
});
let models = {};
let history = []; // earlier states for undo: {clicks, bitmap}
let down = null; // where the left button went down (a click is a press without a drag)

function status(text) {
  $('status').textContent = text;
}

function fail(e) {
  state.error = String(e && e.message ? e.message : e);
  state.busy = false;
  status('error: ' + state.error);
}

/// fetch with the bearer token once the user has logged in (barton serve --auth).
let token = sessionStorage.getItem('barton-token') || '';
function api(url, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(url, { ...options, headers });
}

async function json(url, options) {
  const r = await api(url, options);
  const text = await r.text();
  if (!r.ok) throw new Error(`${options && options.method ? options.method : 'GET'} ${url}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

/// Native voxel index [i, j, k] of the background image for a world position (RAS mm).
function mmToVoxel(mm) {
  const a = nv.volumes[0].hdr.affine; // rows of the NIfTI sform/qform
  const m = [a[0][0], a[0][1], a[0][2], a[1][0], a[1][1], a[1][2], a[2][0], a[2][1], a[2][2]];
  const t = [mm[0] - a[0][3], mm[1] - a[1][3], mm[2] - a[2][3]];
  const det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
    m[2] * (m[3] * m[7] - m[4] * m[6]);
  const inv = [
    (m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det, (m[1] * m[5] - m[2] * m[4]) / det,
    (m[5] * m[6] - m[3] * m[8]) / det, (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
    (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det, (m[0] * m[4] - m[1] * m[3]) / det,
  ];
  const dims = nv.volumes[0].hdr.dims;
  return [0, 1, 2].map((r) => {
    const v = Math.round(inv[r * 3] * t[0] + inv[r * 3 + 1] * t[1] + inv[r * 3 + 2] * t[2]);
    return Math.min(Math.max(v, 0), dims[r + 1] - 1);
  });
}

function voxelToMm(v) {
  const a = nv.volumes[0].hdr.affine;
  return [0, 1, 2].map((r) => a[r][0] * v[0] + a[r][1] * v[1] + a[r][2] * v[2] + a[r][3]);
}

/// For tests and scripts: move the crosshair to voxel v and return where it shows on the canvas
/// (CSS pixels, in the axial tile).
window.bartonScreenOf = (v) => {
  const frac = nv.mm2frac(voxelToMm(v));
  nv.scene.crosshairPos = frac;
  nv.drawScene();
  const p = nv.frac2canvasPosWithTile(frac, SLICE_TYPE.AXIAL);
  const pos = p && p.pos ? p.pos : nv.frac2canvasPos(frac);
  const rect = $('gl').getBoundingClientRect();
  const scale = rect.width / $('gl').width;
  return { x: rect.left + pos[0] * scale, y: rect.top + pos[1] * scale };
};

function countLabel() {
  const b = nv.drawBitmap;
  let n = 0;
  if (b) for (let i = 0; i < b.length; i++) n += b[i] > 0 ? 1 : 0;
  state.labelVoxels = n;
}

function snapshot() {
  history.push({
    clicks: JSON.parse(JSON.stringify(state.clicks)),
    bitmap: nv.drawBitmap ? nv.drawBitmap.slice() : null,
  });
}

function setTool(tool) {
  state.tool = tool;
  for (const t of ['foreground', 'background', 'brush', 'eraser', 'navigate'])
    $('tool-' + t).classList.toggle('on', t === tool);
  const drawing = tool === 'brush' || tool === 'eraser';
  nv.setDrawingEnabled(drawing);
  if (drawing) nv.setPenValue(tool === 'brush' ? 1 : 0, false);
}

async function loadImage(id) {
  state.busy = true;
  state.image = id;
  state.clicks = { foreground: [], background: [] };
  history = [];
  status(`loading ${id}...`);
  const r = await api(`/datastore/image?image=${encodeURIComponent(id)}`);
  if (!r.ok) throw new Error(`image ${id}: ${r.status} ${await r.text()}`);
  const bytes = await r.arrayBuffer();
  const cd = r.headers.get('content-disposition') || '';
  const m = cd.match(/filename="?([^";]+)"?/);
  const name = m ? m[1] : id + '.nii.gz';
  const vol = await NVImage.loadFromUrl({ url: name, name, buffer: bytes });
  while (nv.volumes.length) nv.removeVolume(nv.volumes[0]);
  nv.addVolume(vol);
  nv.createEmptyDrawing();
  nv.setDrawOpacity(Number($('opacity').value));
  $('wmin').value = Math.round(vol.cal_min);
  $('wmax').value = Math.round(vol.cal_max);
  // A session keeps the image the server prepared: later clicks do not upload it again.
  const fd = new FormData();
  fd.append('image', new Blob([bytes]), name);
  const s = await json('/session/?expiry=3600', { method: 'PUT', body: fd });
  state.session = s.session_id;
  countLabel();
  state.busy = false;
  status(`${id}: ${vol.hdr.dims.slice(1, 4).join(' x ')} voxels; click with the ${state.tool} tool`);
}

/// Puts a label image (bytes of a NIfTI on the image's grid) into the drawing layer.
async function showLabel(bytes) {
  const img = await NVImage.loadFromUrl({ url: 'label.nii.gz', name: 'label.nii.gz', buffer: bytes });
  const b = img.img;
  for (let i = 0; i < b.length; i++) b[i] = b[i] > 0 ? 1 : 0; // one label, pen value 1
  if (!nv.loadDrawing(img)) throw new Error('the label is not on the image grid');
  nv.setDrawOpacity(Number($('opacity').value));
  countLabel();
  if (state.lastClick) {
    const [i, j, k] = state.lastClick;
    const d = img.hdr.dims;
    state.labelAtLastClick = b[i + d[1] * (j + d[2] * k)];
  }
}

async function runModel(extraParams) {
  const model = state.model;
  const params = { result_extension: '.nii.gz', ...extraParams };
  const fd = new FormData();
  fd.append('params', JSON.stringify(params));
  // AIAA's route per model type: DeepGrow clicks, DEXTR3D extreme points; segmentation for the
  // rest (a DeepEdit model takes foreground/background there, or segments on its own).
  const type = models[model] ? models[model].type : '';
  const kind = type === 'deepgrow' ? 'deepgrow' : type === 'annotation' ? 'dextr3d' : 'segmentation';
  const url = `/v1/${kind}?model=${encodeURIComponent(model)}&session_id=${state.session}&output=image`;
  state.busy = true;
  const t0 = performance.now();
  const r = await api(url, { method: 'POST', body: fd });
  if (!r.ok) throw new Error(`${kind}: ${r.status} ${await r.text()}`);
  await showLabel(await r.arrayBuffer());
  state.requests += 1;
  state.busy = false;
  status(`${model}: ${state.labelVoxels} labelled voxels, ${Math.round(performance.now() - t0)} ms` +
    (r.headers.get('server-timing') ? ` (${r.headers.get('server-timing')})` : ''));
}

async function click(vox) {
  const tool = state.tool;
  if (tool !== 'foreground' && tool !== 'background') return;
  const type = models[state.model] ? models[state.model].type : '';
  if (!['deepgrow', 'deepedit', 'annotation'].includes(type)) {
    status('pick an interactive model (deepgrow, deepedit or annotation) to click with');
    return;
  }
  snapshot();
  state.lastClick = vox;
  if (type === 'annotation') {
    // DEXTR3D: six extreme points (the structure's two ends along each axis), then one request.
    state.clicks.foreground.push(vox);
    const n = state.clicks.foreground.length;
    if (n < 6) {
      status(`extreme point ${n} of 6 at [${vox.join(', ')}]: mark the structure's two ends along each axis`);
      return;
    }
    status(`${n} extreme points...`);
    await runModel({ points: state.clicks.foreground });
    return;
  }
  state.clicks[tool].push(vox);
  status(`${tool} click at [${vox.join(', ')}]...`);
  await runModel({ foreground: state.clicks.foreground, background: state.clicks.background });
}

async function undo() {
  const h = history.pop();
  if (!h) return;
  state.clicks = h.clicks;
  if (h.bitmap) {
    nv.drawBitmap.set(h.bitmap);
    nv.refreshDrawing(true);
  } else {
    nv.createEmptyDrawing();
  }
  countLabel();
  status(`undone: ${state.labelVoxels} labelled voxels`);
}

async function save() {
  const bytes = await nv.saveImage({ filename: '', isSaveDrawing: true });
  if (!bytes) throw new Error('nothing to save');
  const fd = new FormData();
  fd.append('params', JSON.stringify({ client_id: 'barton-viewer', model: state.model }));
  fd.append('label', new Blob([bytes]), 'label.nii');
  const r = await api(`/datastore/label?image=${encodeURIComponent(state.image)}&tag=final`,
    { method: 'PUT', body: fd });
  const text = await r.text();
  if (!r.ok) throw new Error(`save: ${r.status} ${text}`);
  state.savedVersion = Number(r.headers.get('x-label-version') || (JSON.parse(text).version || 0));
  status(`saved ${state.image} as final, version ${state.savedVersion}`);
}

async function next() {
  const r = await json('/activelearning/first', { method: 'POST', body: '{}',
    headers: { 'content-type': 'application/json' } });
  if (!r.id) {
    status('every image has a final label');
    return;
  }
  $('image').value = r.id;
  await loadImage(r.id);
}

/// With `--auth` the server answers 401 until the user logs in: ask for a name and password, and
/// keep the token for this tab.
async function login() {
  const box = $('login');
  box.style.display = 'block';
  status('log in (barton serve --auth)');
  await new Promise((done) => {
    $('login-form').onsubmit = async (e) => {
      e.preventDefault();
      const body = new URLSearchParams({ username: $('user').value, password: $('password').value,
        grant_type: 'password' });
      const r = await fetch('/auth/token', { method: 'POST', body });
      if (!r.ok) {
        status(`login failed: ${r.status}`);
        return;
      }
      token = (await r.json()).access_token;
      sessionStorage.setItem('barton-token', token);
      box.style.display = 'none';
      done();
    };
  });
}

async function main() {
  await nv.attachToCanvas($('gl'));
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  if ((await api('/info/')).status === 401) await login();
  const info = await json('/info/');
  models = info.models || {};
  const params = new URLSearchParams(location.search);
  for (const name of Object.keys(models)) $('model').add(new Option(`${name} (${models[name].type})`, name));
  const names = Object.keys(models);
  const wanted = params.get('model');
  state.model = wanted && models[wanted] ? wanted
    : names.find((n) => models[n].type === 'deepgrow') || names[0] || '';
  $('model').value = state.model;
  const ds = await json('/datastore/?output=all');
  const ids = Object.keys(ds.objects || {});
  for (const id of ids) $('image').add(new Option(id, id));
  const first = params.get('image') || ids[0];
  if (!first) {
    status('the datastore has no image (serve with --datastore DIR)');
    return;
  }
  $('image').value = first;
  const canvas = $('gl');
  canvas.addEventListener('pointerdown', (e) => {
    down = e.button === 0 ? [e.clientX, e.clientY] : null;
    if (down && (state.tool === 'brush' || state.tool === 'eraser')) snapshot(); // Undo takes back the stroke
  });
  canvas.addEventListener('pointerup', (e) => {
    if (state.tool === 'brush' || state.tool === 'eraser') {
      down = null;
      setTimeout(countLabel, 0); // after NiiVue has drawn the stroke
      return;
    }
    if (!down || state.busy || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 3) return;
    down = null;
    const rect = canvas.getBoundingClientRect();
    const sc = canvas.width / rect.width;
    const frac = nv.canvasPos2frac([(e.clientX - rect.left) * sc, (e.clientY - rect.top) * sc]);
    if (!frac || frac[0] < 0) return; // not on a plane (the 3D rendering, or between tiles)
    click(mmToVoxel(nv.frac2mm(frac))).catch(fail);
  });
  $('model').onchange = () => {
    state.model = $('model').value;
    state.clicks = { foreground: [], background: [] };  // clicks belong to one model
  };
  $('image').onchange = () => loadImage($('image').value).catch(fail);
  for (const t of ['foreground', 'background', 'brush', 'eraser', 'navigate'])
    $('tool-' + t).onclick = () => setTool(t);
  $('undo').onclick = () => undo().catch(fail);
  $('save').onclick = () => save().catch(fail);
  $('next').onclick = () => next().catch(fail);
  $('auto').onclick = () => { snapshot(); runModel({}).catch(fail); };
  $('opacity').oninput = () => nv.setDrawOpacity(Number($('opacity').value));
  const windowChanged = () => {
    const v = nv.volumes[0];
    v.cal_min = Number($('wmin').value);
    v.cal_max = Number($('wmax').value);
    nv.updateGLVolume();
  };
  $('wmin').onchange = windowChanged;
  $('wmax').onchange = windowChanged;
  nv.onDrawingChanged = () => countLabel();
  await loadImage(first);
  setTool('foreground');
  state.ready = true;
}

main().catch(fail);
