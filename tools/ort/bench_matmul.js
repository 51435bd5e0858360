#!/usr/bin/env node
// bench_matmul.js — time a one-input model (A [M, K] float32 -> Y) in onnxruntime-node: the
// MatMulNBits models of tools/matmulnbits.py for bench/kernels.sh.
//
//   node tools/ort/bench_matmul.js MODEL.onnx -m M -k K [--threads T] [--repeats R] [--calls-per C]
//
// Graph optimisation "all", intra-op threads T, sequential. Warm-up, then R samples of enough
// runs for ~30 ms; prints the median seconds per run as one JSON line.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}

async function main() {
  const model = process.argv[2];
  const M = +arg('-m', 0), K = +arg('-k', 0), T = +arg('--threads', 1), R = +arg('--repeats', 5);
  if (!model || model.startsWith('-') || !(M > 0) || !(K > 0)) {
    console.error('usage: bench_matmul.js MODEL.onnx -m M -k K [--threads T] [--repeats R]');
    process.exit(2);
  }
  const s = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', intraOpNumThreads: T, interOpNumThreads: 1, executionMode: 'sequential',
  });
  const a = new Float32Array(M * K);
  for (let i = 0; i < a.length; i++) a[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', a, [M, K]) };
  let t0 = process.hrtime.bigint();
  await s.run(feeds);
  await s.run(feeds);
  const per = Number(process.hrtime.bigint() - t0) / 2e9;
  const calls = Math.max(1, Math.ceil(0.03 / per));
  const v = [];
  for (let r = 0; r < R; r++) {
    t0 = process.hrtime.bigint();
    for (let c = 0; c < calls; c++) await s.run(feeds);
    v.push(Number(process.hrtime.bigint() - t0) / 1e9 / calls);
  }
  v.sort((x, y) => x - y);
  const med = R % 2 ? v[(R - 1) / 2] : 0.5 * (v[R / 2 - 1] + v[R / 2]);
  console.log(JSON.stringify({ seconds: med, calls }));
}
main().catch((e) => { console.error(`bench_matmul: ${e.message}`); process.exit(1); });
