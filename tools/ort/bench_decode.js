#!/usr/bin/env node
// bench_decode.js — prefill and decode speed of a with-past OPT export in onnxruntime-node,
// the baseline bench/decode_fp32.sh measures bqc against.
//
//   node tools/ort/bench_decode.js MODEL.onnx --prompt 128 --decode 32 --repeats 3 --threads 1
//
// Each repeat: prefill PROMPT tokens with an empty past (timed), then DECODE greedy steps
// feeding the presents back as the past (each timed). Graph optimisation level "all" (the
// fastest onnxruntime offers; tests use "basic" when ORT is the numerical oracle). Prints the
// medians as one JSON line.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}
function median(v) {
  const s = [...v].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const model = process.argv[2];
  if (!model || model.startsWith('--')) {
    console.error('usage: bench_decode.js MODEL.onnx [--prompt N] [--decode N] [--repeats N] [--threads N]');
    process.exit(2);
  }
  const P = +arg('--prompt', 128), D = +arg('--decode', 32), R = +arg('--repeats', 3), T = +arg('--threads', 1);
  const s = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', intraOpNumThreads: T, interOpNumThreads: 1, executionMode: 'sequential',
  });
  const pastNames = s.inputNames.filter((n) => n.startsWith('past_key_values.'));
  if (!pastNames.length) throw new Error(`${model}: no past_key_values inputs (export with --with-past)`);
  const heads = +arg('--heads', 0), headDim = +arg('--head-dim', 0);
  const vocab = +arg('--vocab', 0);
  const feeds = (ids, past, total) => {
    const f = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    pastNames.forEach((n, i) => { f[n] = past[i]; });
    return f;
  };
  const pre = [], dec = [];
  for (let r = 0; r < R; r++) {
    const ids = Array.from({ length: P }, (_, i) => 2 + ((i * 131) % (vocab - 2)));
    let past = pastNames.map(() => new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headDim]));
    let t0 = process.hrtime.bigint();
    let out = await s.run(feeds(ids, past, P));
    pre.push(Number(process.hrtime.bigint() - t0) / 1e6);
    let n = P;
    for (let i = 0; i < D; i++) {
      const lg = out.logits.data, off = lg.length - vocab;
      let best = 0;
      for (let v = 1; v < vocab; v++) if (lg[off + v] > lg[off + best]) best = v;
      past = pastNames.map((name) => out[name.replace('past_key_values', 'present')]);
      n += 1;
      t0 = process.hrtime.bigint();
      out = await s.run(feeds([best], past, n));
      dec.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  console.log(JSON.stringify({ prefill_ms: +median(pre).toFixed(3), decode_ms: +median(dec).toFixed(3) }));
}

main().catch((e) => { console.error(`bench_decode: ${e.message}`); process.exit(1); });
