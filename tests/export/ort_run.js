// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node) on a raw float32 input and writes the
// raw float32 output: the independent runtime that Barton's ONNX export is checked against.
//
// usage: node ort_run.js MODEL.onnx INPUT.bin D0,D1,... OUTPUT.bin
// prints {"input": name, "output": name, "dims": [...]} on success.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inPath, shapeText, outPath] = process.argv.slice(2);
  if (!outPath) throw new Error('usage: node ort_run.js MODEL.onnx INPUT.bin D0,D1,... OUTPUT.bin');
  const dims = shapeText.split(',').map(Number);
  const buf = fs.readFileSync(inPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', data, dims);
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  fs.writeFileSync(outPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  console.log(JSON.stringify({ input: session.inputNames[0], output: session.outputNames[0], dims: out.dims, type: out.type }));
}

main().catch((e) => {
  console.error('ort_run: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
