/* The explorer runtime: the one script behind every explorer of the book (vae_lib/explorer.py).
 *
 * An explorer is described once, in Python, as JSON: its controls (sliders, choices, buttons, a drawing pad),
 * its panels (a plane the reader can drag on, images, bar and line plots, a readout) and its program (the update:
 * a list of small numeric ops from the controls' values to the values the panels draw). The same description is
 * drawn in two ways:
 *   - static (the built book, or a notebook output with no kernel): this script runs the program itself, networks
 *     included (their weights travel with the description);
 *   - live (an anywidget in a running kernel): the kernel runs the program with torch and sends the values back.
 * Nothing here touches plotly: the explorer draws its own SVG and canvas.
 *
 * Public: vaeExplorer.mountAll(root), vaeExplorer.mount(element), vaeExplorer.render(element, spec, engine),
 * vaeExplorer.ops (the op implementations, for tests), vaeExplorer.data(id, b64) (external data files call it).
 * Each mounted explorer element gets .explorer = {set(name, value), values(), state, update()} for tests. */
(function (root) {
  'use strict';
  if (root.vaeExplorer && root.vaeExplorer.version === 1) { return; }
  var SVG = 'http://www.w3.org/2000/svg';
  var pending = {};  // external data id -> callbacks waiting for it
  var external = {};  // external data id -> base64 payload

  // ---------------------------------------------------------------- values: numbers and row-major matrices
  function M(rows, cols, data) { return { rows: rows, cols: cols, d: data || new Float64Array(rows * cols) }; }
  function asMatrix(v) {
    if (typeof v === 'number') { return M(1, 1, Float64Array.of(v)); }
    if (Array.isArray(v)) { return M(1, v.length, Float64Array.from(v)); }
    return v;
  }
  function decodeB64(b64) {
    if (typeof b64 !== 'string') { return b64; }  // bytes already: an inflated external array (data, below)
    var raw = atob(b64), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }
  // a data entry {dtype, shape, b64} (little-endian, as numpy writes it) -> Float64Array of its values
  function decodeData(entry, decoded) {
    var bytes = decodeB64(entry.b64), raw;
    if (entry.dtype === 'int8') { raw = new Int8Array(bytes.buffer); }
    else if (entry.dtype === 'uint8') { raw = bytes; }
    else if (entry.dtype === 'float32') { raw = new Float32Array(bytes.buffer); }
    else { throw new Error('explorer data: unknown dtype ' + entry.dtype); }
    var out = new Float64Array(raw.length), scale = entry.scale, offset = entry.offset || 0;
    var cols = entry.shape.slice(1).reduce(function (a, b) { return a * b; }, 1);  // one row: all but the first axis
    for (var i = 0; i < raw.length; i++) {
      // int8 weights carry one scale per row; uint8 images one (offset, scale) pair
      var s = scale === undefined ? 1 : (typeof scale === 'string' ? decoded[scale][Math.floor(i / cols)] : scale);
      out[i] = offset + s * raw[i];
    }
    return out;
  }

  // ---------------------------------------------------------------- the ops (mirrored by vae_lib/explorer.py)
  var ops = {
    stack: function (op, v) {
      var m = M(1, op.inputs.length);
      op.inputs.forEach(function (name, k) { m.d[k] = v[name]; });
      v[op.output] = m;
    },
    affine: function (op, v) {  // y = a x + b elementwise
      var x = asMatrix(v[op.input]), y = M(x.rows, x.cols);
      for (var i = 0; i < x.d.length; i++) { y.d[i] = op.a * x.d[i] + (op.b || 0); }
      v[op.output] = y;
    },
    mlp: function (op, v, data) {  // Linear layers (W (out, in), b) with SiLU between them, on each row of x
      var h = asMatrix(v[op.input]);
      op.layers.forEach(function (layer) {
        var W = f32(data, layer.w), b = data[layer.b], nOut = layer.shape[0], nIn = layer.shape[1], rows = h.rows;
        var silu = layer.act === 'silu', hd = h.d;
        if (h.cols !== nIn) { throw new Error('mlp: input has ' + h.cols + ' columns, layer expects ' + nIn); }
        var out = M(rows, nOut), od = out.d;
        // output unit outermost: its weight row stays in the cache while every input row uses it
        for (var o = 0; o < nOut; o++) {
          var wOff = o * nIn, bias = b[o];
          for (var r = 0; r < rows; r++) {
            var s = bias, hOff = r * nIn;
            for (var i = 0; i < nIn; i++) { s += W[wOff + i] * hd[hOff + i]; }
            od[r * nOut + o] = silu ? s / (1 + Math.exp(-s)) : s;
          }
        }
        h = out;
      });
      v[op.output] = h;
    },
    convnet: function (op, v, data) {
      // chapter 7's convolutional decoder: Linear -> feature map -> transposed 3x3 convolutions (stride 2, BatchNorm
      // folded in, LeakyReLU) -> a 3x3 convolution; feature maps channels first (C, H, W)
      var z = asMatrix(v[op.input]), h = null, shape = null;
      op.layers.forEach(function (layer) {
        var W = f32(data, layer.w), b = data[layer.b], s = layer.shape, os = layer.out_shape;
        var out = new Float32Array(os[0] * os[1] * os[2]), co, ci, y, x, ky, kx;
        if (layer.kind === 'linear') {
          for (co = 0; co < s[0]; co++) {
            var acc = b[co];
            for (ci = 0; ci < s[1]; ci++) { acc += W[co * s[1] + ci] * z.d[ci]; }
            out[co] = acc;
          }
        } else if (layer.kind === 'conv_transpose') {
          // out[co, oy, ox] = b[co] + sum over ci and the taps with oy = 2 iy - 1 + ky, ox = 2 ix - 1 + kx of
          // in[ci, iy, ix] W[co, ci, ky, kx]: gathered per output position (1, 2 or 4 taps), then dotted per co
          var Hi = shape[1], Wi = shape[2], Ho = os[1], Wo = os[2], Ci2 = s[1];
          var taps = function (o, n) {  // [k, i] pairs with o = 2 i - 1 + k, 0 <= i < n
            var t = [];
            for (var k = 0; k < 3; k++) {
              var twice = o + 1 - k;
              if (twice % 2 === 0 && twice >= 0 && twice / 2 < n) { t.push([k, twice / 2]); }
            }
            return t;
          };
          var vals = new Float32Array(Ci2 * 4), widx = new Int32Array(Ci2 * 4);
          for (var oy = 0; oy < Ho; oy++) {
            var ty = taps(oy, Hi);
            for (var ox = 0; ox < Wo; ox++) {
              var tx = taps(ox, Wi), n = 0;
              for (ci = 0; ci < Ci2; ci++) {
                for (var a = 0; a < ty.length; a++) {
                  for (var c2 = 0; c2 < tx.length; c2++) {
                    vals[n] = h[(ci * Hi + ty[a][1]) * Wi + tx[c2][1]];
                    widx[n++] = ci * 9 + ty[a][0] * 3 + tx[c2][0];
                  }
                }
              }
              var sw = Ci2 * 9, so = Ho * Wo, op3 = oy * Wo + ox;
              for (co = 0; co + 3 < s[0]; co += 4) {  // four output maps at a time: independent sums, each in order
                var t0 = b[co], t1 = b[co + 1], t2 = b[co + 2], t3 = b[co + 3], v0 = co * sw;
                for (var q3 = 0; q3 < n; q3++) {
                  var g = v0 + widx[q3], val = vals[q3];
                  t0 += W[g] * val; t1 += W[g + sw] * val; t2 += W[g + 2 * sw] * val; t3 += W[g + 3 * sw] * val;
                }
                var oo = co * so + op3;
                out[oo] = t0; out[oo + so] = t1; out[oo + 2 * so] = t2; out[oo + 3 * so] = t3;
              }
              for (; co < s[0]; co++) {
                var acc3 = b[co], wOff3 = co * sw;
                for (var q4 = 0; q4 < n; q4++) { acc3 += W[wOff3 + widx[q4]] * vals[q4]; }
                out[co * so + op3] = acc3;
              }
            }
          }
        } else {  // conv: 3x3, stride 1, padding 1. Per pair of positions (x, x + 1) the 3x3 patches of every input
          // map are gathered, then four output maps at a time are dotted with both: eight independent sums share
          // each weight and patch value (a third of the time of one sum at a time; each sum keeps its order)
          var H = os[1], Wd = os[2], Ci = s[1], Co = s[0], P = Ci * 9, st = H * Wd;
          var pa = new Float32Array(P), pb = new Float32Array(P);
          var gather = function (patch, y, x) {
            for (var ci = 0; ci < Ci; ci++) {
              for (var ky = 0; ky < 3; ky++) {
                var yy = y + ky - 1, base = ci * 9 + ky * 3, row = (ci * H + yy) * Wd, inside = yy >= 0 && yy < H;
                for (var kx = 0; kx < 3; kx++) {
                  var xx = x + kx - 1;
                  patch[base + kx] = (!inside || xx < 0 || xx >= Wd) ? 0 : h[row + xx];
                }
              }
            }
          };
          for (y = 0; y < H; y++) {
            for (x = 0; x < Wd; x += 2) {
              var two = x + 1 < Wd, o = y * Wd + x;
              gather(pa, y, x);
              if (two) { gather(pb, y, x + 1); }
              for (co = 0; co + 3 < Co; co += 4) {
                var a0 = b[co], a1 = b[co + 1], a2 = b[co + 2], a3 = b[co + 3];
                var c0 = a0, c1 = a1, c2 = a2, c3 = a3, w0 = co * P, w1 = w0 + P, w2 = w1 + P, w3 = w2 + P;
                for (var q = 0; q < P; q++) {
                  var p = pa[q], r = pb[q], u0 = W[w0 + q], u1 = W[w1 + q], u2 = W[w2 + q], u3 = W[w3 + q];
                  a0 += u0 * p; a1 += u1 * p; a2 += u2 * p; a3 += u3 * p;
                  c0 += u0 * r; c1 += u1 * r; c2 += u2 * r; c3 += u3 * r;
                }
                var oc = co * st + o;
                out[oc] = a0; out[oc + st] = a1; out[oc + 2 * st] = a2; out[oc + 3 * st] = a3;
                if (two) {
                  out[oc + 1] = c0; out[oc + st + 1] = c1; out[oc + 2 * st + 1] = c2; out[oc + 3 * st + 1] = c3;
                }
              }
              for (; co < Co; co++) {  // the last Co mod 4 maps
                var e0 = b[co], e1 = e0, we = co * P;
                for (var q2 = 0; q2 < P; q2++) { e0 += W[we + q2] * pa[q2]; e1 += W[we + q2] * pb[q2]; }
                out[co * st + o] = e0;
                if (two) { out[co * st + o + 1] = e1; }
              }
            }
          }
        }
        if (layer.slope !== null && layer.slope !== undefined) {
          for (var k = 0; k < out.length; k++) { if (out[k] < 0) { out[k] *= layer.slope; } }
        }
        h = out; shape = os;
      });
      var D = shape[1] * shape[2], K = op.per_pixel, C = shape[0] / K, res = M(1, h.length);
      if (op.layout === 'pixel_major') {  // (C, k, H, W) -> (C, H, W, k)
        for (var c = 0; c < C; c++) {
          for (var l = 0; l < K; l++) {
            for (var d = 0; d < D; d++) { res.d[(c * D + d) * K + l] = h[(c * K + l) * D + d]; }
          }
        }
      } else { res.d.set(h); }
      v[op.output] = res;
    },
    head: function (op, v) {  // decoder outputs -> E[x|z] in data units, per row
      var out = asMatrix(v[op.input]), D = op.dims, y = M(out.rows, D);
      for (var r = 0; r < out.rows; r++) {
        for (var d = 0; d < D; d++) {
          var val;
          if (op.kind === 'categorical') {
            var off = r * out.cols + d * op.levels, mx = -Infinity, z = 0, mean = 0;
            for (var l = 0; l < op.levels; l++) { mx = Math.max(mx, out.d[off + l]); }
            for (l = 0; l < op.levels; l++) { var e = Math.exp(out.d[off + l] - mx); z += e; mean += l * e; }
            val = mean / z;
          } else if (op.kind === 'sigmoid') {
            val = op.scale / (1 + Math.exp(-out.d[r * out.cols + d]));
          } else {
            val = op.scale * out.d[r * out.cols + d];
          }
          y.d[r * D + d] = val;
        }
      }
      v[op.output] = y;
    },
    nearest_code: function (op, v, data) {  // each code_dim block of z replaced by its nearest codebook row
      var z = asMatrix(v[op.input]), C = data[op.codebook], D = op.code_dim, K = C.length / D, y = M(z.rows, z.cols);
      for (var r = 0; r < z.rows; r++) {
        for (var p = 0; p < z.cols / D; p++) {
          var off = r * z.cols + p * D, best = 0, bestD = Infinity;
          for (var k = 0; k < K; k++) {
            var dist = 0;
            for (var j = 0; j < D; j++) { var t = z.d[off + j] - C[k * D + j]; dist += t * t; }
            if (dist < bestD) { bestD = dist; best = k; }
          }
          for (j = 0; j < D; j++) { y.d[off + j] = C[best * D + j]; }
        }
      }
      v[op.output] = y;
    },
    bilinear: function (op, v, data) {  // a (n2, n1, P) grid of outputs over z, interpolated at (z1, z2)
      var G = data[op.grid], n1 = op.n1, n2 = op.n2, P = op.size, out = M(1, P);
      function pos(value, lo, hi, n) {
        var t = (Math.min(Math.max(value, lo), hi) - lo) / (hi - lo) * (n - 1), i = Math.min(Math.floor(t), n - 2);
        return [i, t - i];
      }
      var a = pos(v[op.inputs[0]], op.x[0], op.x[1], n1), b = pos(v[op.inputs[1]], op.y[0], op.y[1], n2);
      for (var p = 0; p < P; p++) {
        var g00 = G[(b[0] * n1 + a[0]) * P + p], g01 = G[(b[0] * n1 + a[0] + 1) * P + p];
        var g10 = G[((b[0] + 1) * n1 + a[0]) * P + p], g11 = G[((b[0] + 1) * n1 + a[0] + 1) * P + p];
        out.d[p] = (1 - b[1]) * ((1 - a[1]) * g00 + a[1] * g01) + b[1] * ((1 - a[1]) * g10 + a[1] * g11);
      }
      v[op.output] = out;
    },
    split: function (op, v) {  // the columns of x into equal parts (e.g. encoder output -> mean, log variance)
      var x = asMatrix(v[op.input]), n = op.outputs.length, w = x.cols / n;
      op.outputs.forEach(function (name, k) {
        var y = M(x.rows, w);
        for (var r = 0; r < x.rows; r++) { for (var c = 0; c < w; c++) { y.d[r * w + c] = x.d[r * x.cols + k * w + c]; } }
        v[name] = y;
      });
    },
    ellipse: function (op, v) {  // the k-sigma ellipse of N(mean, diag exp(log_var)) in the first two dimensions
      var m = asMatrix(v[op.mean]), lv = asMatrix(v[op.log_var]), xs = [], ys = [], n = op.points - 1;
      for (var t = 0; t <= n; t++) {
        var a = 2 * Math.PI * t / n;
        xs.push(m.d[0] + op.k * Math.exp(0.5 * lv.d[0]) * Math.cos(a));
        ys.push(m.d[1] + op.k * Math.exp(0.5 * lv.d[1]) * Math.sin(a));
      }
      v[op.output] = { x: xs, y: ys };
    },
    kl_std_normal: function (op, v) {  // KL(N(m, diag exp(lv)) || N(0, I)) = ½ Σ (m² + e^lv − 1 − lv)
      var m = asMatrix(v[op.mean]), lv = asMatrix(v[op.log_var]), s = 0;
      for (var i = 0; i < m.d.length; i++) { s += 0.5 * (m.d[i] * m.d[i] + Math.exp(lv.d[i]) - 1 - lv.d[i]); }
      v[op.output] = s;
    },
    reparameterize: function (op, v, data) {  // z_k = m + exp(lv / 2) ε_k for the K fixed rows ε_k
      var m = asMatrix(v[op.mean]), lv = asMatrix(v[op.log_var]), E = data[op.eps], L = m.cols, K = E.length / L;
      var z = M(K, L);
      for (var k = 0; k < K; k++) {
        for (var l = 0; l < L; l++) { z.d[k * L + l] = m.d[l] + Math.exp(0.5 * lv.d[l]) * E[k * L + l]; }
      }
      v[op.output] = z;
    },
    categorical_log_likelihood: function (op, v) {  // mean over rows k of Σ_d log softmax(logits_kd)[x_d]
      var logits = asMatrix(v[op.logits]), x = asMatrix(v[op.x]), D = x.cols, L = op.levels, total = 0;
      for (var k = 0; k < logits.rows; k++) {
        for (var d = 0; d < D; d++) {
          var off = k * logits.cols + d * L, mx = -Infinity, z = 0;
          for (var l = 0; l < L; l++) { mx = Math.max(mx, logits.d[off + l]); }
          for (l = 0; l < L; l++) { z += Math.exp(logits.d[off + l] - mx); }
          total += logits.d[off + Math.round(x.d[d])] - mx - Math.log(z);
        }
      }
      v[op.output] = total / logits.rows;
    },
    difference: function (op, v) { v[op.output] = v[op.inputs[0]] - v[op.inputs[1]]; },
    flow_steps: function (op, v, data) {
      // a normalizing flow on fixed base draws: z_0 = μ + σ ε_n, then the first T planar or radial steps; log q_T =
      // log q_0(z_0) − Σ_t log|det ∂f_t/∂z_{t−1}| (vae_lib.flows; chapter 8). Every row is done step by step in place
      var E = data[op.eps], L = op.mean.length, N = E.length / L, z = M(N, L), lq = M(1, N), zd = z.d, qd = lq.d;
      var T = Math.min(Math.max(Math.round(v[op.depth]), 0), op.steps.length), base = 0, sd = [], n, l, t;
      for (l = 0; l < L; l++) {
        sd.push(Math.exp(0.5 * op.log_var[l]));
        base -= 0.5 * (op.log_var[l] + Math.log(2 * Math.PI));
      }
      for (n = 0; n < N; n++) {
        var ss = 0;
        for (l = 0; l < L; l++) { var e = E[n * L + l]; zd[n * L + l] = op.mean[l] + sd[l] * e; ss += e * e; }
        qd[n] = base - 0.5 * ss;
      }
      for (t = 0; t < T; t++) {
        var st = op.steps[t];
        if (st.kind === 'planar') {  // f(z) = z + û tanh(wᵀz + b), log|det| = log|1 + (1 − tanh²) wᵀû|
          var wu = 0;
          for (l = 0; l < L; l++) { wu += st.w[l] * st.u[l]; }
          for (n = 0; n < N; n++) {
            var a = st.b;
            for (l = 0; l < L; l++) { a += st.w[l] * zd[n * L + l]; }
            var h = Math.tanh(a);
            for (l = 0; l < L; l++) { zd[n * L + l] += st.u[l] * h; }
            qd[n] -= Math.log(Math.abs(1 + (1 - h * h) * wu));
          }
        } else {  // radial: f(z) = z + β (z − z₀)/(α + r), log|det| = (L − 1) log(1 + βh) + log(1 + βα/(α + r)²)
          for (n = 0; n < N; n++) {
            var r2 = 0;
            for (l = 0; l < L; l++) { var d = zd[n * L + l] - st.z0[l]; r2 += d * d; }
            var r = Math.sqrt(r2), bh = st.beta / (st.alpha + r);
            for (l = 0; l < L; l++) { zd[n * L + l] += bh * (zd[n * L + l] - st.z0[l]); }
            qd[n] -= (L - 1) * Math.log1p(bh) + Math.log1p(st.beta * st.alpha / ((st.alpha + r) * (st.alpha + r)));
          }
        }
      }
      v[op.output] = z;
      v[op.log_q] = lq;
      if (op.density) { v[op.density] = flowDensity(op, T); }
    },
    lookup: function (op, v) {  // precomputed values for each combination of the keys' (choice or step) indices
      var key = op.keys.map(function (k) { return String(v[k + '#index']); }).join(',');
      var entry = op.table[key];
      if (!entry) { throw new Error('lookup: no entry for ' + key); }
      Object.keys(entry).forEach(function (name) { v[name] = entry[name]; });
    },
    quadrature_elbo: function (op, v, data) {
      // L(q) = Σ_g q(z_g) [log p(x, z_g) − log q(z_g)] dA on the grid of preset p, q = N(μ, diag σ²); and log p(x)
      var G = data[op.log_joint], n1 = op.z1.length, n2 = op.z2.length, cells = n1 * n2, p = v[op.preset + '#index'];
      var mu1 = v[op.q[0]], mu2 = v[op.q[1]], ls1 = v[op.q[2]], ls2 = v[op.q[3]], s1 = Math.exp(ls1), s2 = Math.exp(ls2);
      var off = p * cells, elbo = 0, mx = -Infinity, sum = 0, LOG_2PI = Math.log(2 * Math.PI);
      var grad = [0, 0, 0, 0];
      for (var j = 0; j < n2; j++) {
        var u2 = (op.z2[j] - mu2) / s2;
        for (var i = 0; i < n1; i++) {
          var u1 = (op.z1[i] - mu1) / s1, logQ = -LOG_2PI - ls1 - ls2 - 0.5 * (u1 * u1 + u2 * u2), q = Math.exp(logQ);
          var lj = G[off + j * n1 + i];
          if (lj > mx) { sum = sum * Math.exp(mx - lj) + 1; mx = lj; } else { sum += Math.exp(lj - mx); }
          if (q === 0) { continue; }
          var f = lj - logQ, c = q * (f - 1);
          elbo += q * f;
          grad[0] += c * u1 / s1; grad[1] += c * u2 / s2; grad[2] += c * (u1 * u1 - 1); grad[3] += c * (u2 * u2 - 1);
        }
      }
      v[op.output] = elbo * op.cell_area;
      v[op.output + '_grad'] = grad.map(function (g) { return g * op.cell_area; });
      v[op.evidence] = mx + Math.log(sum) + Math.log(op.cell_area);
      v[op.gap] = v[op.evidence] - v[op.output];
      if (op.posterior) {  // p(z|x) on the grid relative to its peak: exp(log p(x, z_g) − max), (n2, n1)
        var post = M(n2, n1);
        for (var g = 0; g < cells; g++) { post.d[g] = Math.exp(G[off + g] - mx); }
        v[op.posterior] = post;
      }
    }
  };

  // q_T on an n × n grid over [low, high]² (row 0 at the lowest z₂), relative to exp(op.log_peak) (null: to its own
  // largest value): each grid point z_T is
  // taken back through steps T … 1, adding each step's log|det| at its preimage, then log q_0(z_0) (L = 2)
  function flowDensity(op, T) {
    var lo = op.grid[0], hi = op.grid[1], n = op.grid[2], out = M(n, n), d = out.d, mx = -Infinity, k, t;
    var z = [0, 0], base = -Math.log(2 * Math.PI), sd = [];
    for (k = 0; k < 2; k++) { sd.push(Math.exp(0.5 * op.log_var[k])); base -= 0.5 * op.log_var[k]; }
    for (var g = 0; g < n * n; g++) {
      z[0] = lo + (hi - lo) * (g % n) / (n - 1); z[1] = lo + (hi - lo) * Math.floor(g / n) / (n - 1);
      var logDet = 0;
      for (t = T - 1; t >= 0; t--) {
        var st = op.steps[t];
        if (st.kind === 'planar') {  // a + c tanh(a) = s for a = wᵀz + b, c = wᵀû > −1: increasing in a
          var c = st.w[0] * st.u[0] + st.w[1] * st.u[1], s = st.w[0] * z[0] + st.w[1] * z[1] + st.b;
          var aLo = s - Math.abs(c) - 1, aHi = s + Math.abs(c) + 1, a = s, th = Math.tanh(a);
          for (var it = 0; it < 100; it++) {  // Newton's method, kept inside the bracket [aLo, aHi] by bisection
            var f = a + c * th - s;
            if (f > 0) { aHi = a; } else { aLo = a; }
            var next = a - f / (1 + c * (1 - th * th));
            if (!(next > aLo && next < aHi)) { next = 0.5 * (aLo + aHi); }
            if (Math.abs(next - a) < 1e-14 * (1 + Math.abs(a))) { a = next; th = Math.tanh(a); break; }
            a = next; th = Math.tanh(a);
          }
          z[0] -= st.u[0] * th; z[1] -= st.u[1] * th;
          logDet += Math.log(Math.abs(1 + (1 - th * th) * c));
        } else {  // radial: r' = r (1 + β/(α + r)), the root r ≥ 0 of r² + (α + β − r') r − α r' = 0
          var d0 = z[0] - st.z0[0], d1 = z[1] - st.z0[1], rn = Math.sqrt(d0 * d0 + d1 * d1);
          var pp = st.alpha + st.beta - rn, r = 0.5 * (-pp + Math.sqrt(pp * pp + 4 * st.alpha * rn));
          var bh = st.beta / (st.alpha + r);
          z[0] = st.z0[0] + d0 / (1 + bh); z[1] = st.z0[1] + d1 / (1 + bh);
          logDet += Math.log1p(bh) + Math.log1p(st.beta * st.alpha / ((st.alpha + r) * (st.alpha + r)));
        }
      }
      var u0 = (z[0] - op.mean[0]) / sd[0], u1 = (z[1] - op.mean[1]) / sd[1];
      d[g] = base - 0.5 * (u0 * u0 + u1 * u1) - logDet;
      if (d[g] > mx) { mx = d[g]; }
    }
    var peak = op.log_peak === null || op.log_peak === undefined ? mx : op.log_peak;
    for (g = 0; g < n * n; g++) { d[g] = Math.exp(d[g] - peak); }
    return out;
  }

  // a float32 copy of an array for the networks' inner loops (half the memory traffic; the page's sums then agree
  // with float64 to about 1e-6 relative), made once per array
  function f32(data, name) {
    var key = name + '#f32';
    return data[key] || (data[key] = Float32Array.from(data[name]));
  }

  function runProgram(program, values, data) {
    program.forEach(function (op) { ops[op.op](op, values, data); });
    return values;
  }

  // ---------------------------------------------------------------- drawing helpers
  function el(tag, attrs, parent, ns) {
    var e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function svg(tag, attrs, parent) { return el(tag, attrs, parent, true); }
  var COLORMAPS = {  // value in [0, 1] -> [r, g, b]
    greys: function (t) { var c = Math.round(255 * (1 - t)); return [c, c, c]; },  // 0 white, 1 black (ink)
    gray: function (t) { var c = Math.round(255 * t); return [c, c, c]; },  // 0 black, 1 white
    blues: function (t) {  // white to dark blue
      return [Math.round(247 - 239 * t), Math.round(251 - 203 * t), Math.round(255 - 148 * t)];
    }
  };
  function paint(ctx, values, rows, cols, range, colormap) {
    var img = ctx.createImageData(cols, rows), cm = COLORMAPS[colormap || 'greys'], span = range[1] - range[0];
    for (var i = 0; i < rows * cols; i++) {
      var raw = values[i], t = Math.min(1, Math.max(0, (raw - range[0]) / span)), c = cm(t);
      img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2];
      img.data[4 * i + 3] = raw === raw ? 255 : 0;  // NaN: transparent (the gaps between mosaic tiles)
    }
    ctx.putImageData(img, 0, 0);
  }
  function num(x) { return typeof x === 'number' ? x : (x && x.d && x.d.length === 1 ? x.d[0] : x); }
  function format(template, v) {
    return template.replace(/\{([^}:]+)(?::\.(\d+)f)?\}/g, function (_, name, digits) {
      var x = num(v[name]);
      if (typeof x !== 'number') { return String(x); }
      var s = digits === undefined ? String(x) : x.toFixed(Number(digits));
      return /^-0\.?0*$/.test(s) ? s.slice(1) : s.replace('-', '\u2212');
    });
  }
  function ticks(lo, hi) {
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / 4))), out = [];
    if (span / step > 12) { step *= 5; } else if (span / step > 6) { step *= 2; }
    for (var t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) { out.push(Math.round(t / step) * step); }
    return out;
  }

  // A 2-D plot in SVG: axes with ticks and titles, an optional bitmap background, and layers drawn from values.
  function Plot(panel, parent) {
    var W = panel.width || 380, H = panel.height || 380, m = { l: 52, r: 12, t: 28, b: 46 };
    var x = panel.x, y = panel.y, self = this;
    this.panel = panel;
    this.root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'vae-explorer-plot', role: 'img',
                             'aria-label': (panel.title || '') + (x.title ? '; horizontal axis ' + x.title : '') +
                                           (y.title ? ', vertical axis ' + y.title : '') }, parent);
    this.px = function (v) { return m.l + (v - x.range[0]) / (x.range[1] - x.range[0]) * (W - m.l - m.r); };
    this.py = function (v) { return H - m.b - (v - y.range[0]) / (y.range[1] - y.range[0]) * (H - m.t - m.b); };
    this.fromPixel = function (clientX, clientY) {
      var box = self.root.getBoundingClientRect(), sx = W / box.width, sy = H / box.height;
      var u = (clientX - box.left) * sx, w = (clientY - box.top) * sy;
      return [x.range[0] + (u - m.l) / (W - m.l - m.r) * (x.range[1] - x.range[0]),
              y.range[0] + (H - m.b - w) / (H - m.t - m.b) * (y.range[1] - y.range[0])];
    };
    if (panel.title) { svg('text', { x: m.l, y: 16, class: 'vae-explorer-title' }, this.root).textContent = panel.title; }
    var clip = 'clip-' + Math.random().toString(36).slice(2);
    var cp = svg('clipPath', { id: clip }, svg('defs', {}, this.root));
    svg('rect', { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b }, cp);
    this.back = svg('g', { 'clip-path': 'url(#' + clip + ')' }, this.root);
    this.layers = svg('g', { 'clip-path': 'url(#' + clip + ')' }, this.root);
    svg('rect', { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: 'vae-explorer-frame' }, this.root);
    var axes = svg('g', { class: 'vae-explorer-axes' }, this.root), tickMarks = svg('g', {}, axes);
    var drawnRanges = null;
    this.rescale = function (xr, yr) {  // new axis ranges (a plane whose ranges the program sets), new ticks
      if (xr) { x.range = [xr[0], xr[1]]; }
      if (yr) { y.range = [yr[0], yr[1]]; }
      var key = x.range.join(',') + ';' + y.range.join(',');
      if (key === drawnRanges) { return; }  // the same axes: keep the ticks (no DOM work)
      drawnRanges = key;
      while (tickMarks.firstChild) { tickMarks.removeChild(tickMarks.firstChild); }
      ticks(x.range[0], x.range[1]).forEach(function (t) {
        svg('line', { x1: self.px(t), x2: self.px(t), y1: H - m.b, y2: H - m.b + 4 }, tickMarks);
        var label = svg('text', { x: self.px(t), y: H - m.b + 16, 'text-anchor': 'middle' }, tickMarks);
        label.textContent = +t.toFixed(6);
      });
      ticks(y.range[0], y.range[1]).forEach(function (t) {
        svg('line', { x1: m.l - 4, x2: m.l, y1: self.py(t), y2: self.py(t) }, tickMarks);
        svg('text', { x: m.l - 7, y: self.py(t) + 4, 'text-anchor': 'end' }, tickMarks).textContent = +t.toFixed(6);
      });
    };
    this.rescale();
    svg('text', { x: (m.l + W - m.r) / 2, y: H - 8, 'text-anchor': 'middle', class: 'vae-explorer-axis-title' },
        axes).textContent = x.title || '';
    svg('text', { x: 14, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'vae-explorer-axis-title',
                  transform: 'rotate(-90 14 ' + (m.t + H - m.b) / 2 + ')' }, axes).textContent = y.title || '';
    this.nodes = {};
  }
  Plot.prototype.bitmap = function (values, rows, cols, range, colormap, extent, blank) {
    if (blank !== undefined) { values = values.map(function (v) { return v === blank ? NaN : v; }); }
    var c = document.createElement('canvas');
    c.width = cols; c.height = rows;
    paint(c.getContext('2d'), values, rows, cols, range, colormap);
    if (!this.image) {
      this.image = svg('image', { preserveAspectRatio: 'none', class: 'vae-explorer-pixels' }, this.back);
    }
    var x0 = this.px(extent[0]), x1 = this.px(extent[1]), y0 = this.py(extent[3]), y1 = this.py(extent[2]);
    this.image.setAttribute('x', Math.min(x0, x1)); this.image.setAttribute('y', Math.min(y0, y1));
    this.image.setAttribute('width', Math.abs(x1 - x0)); this.image.setAttribute('height', Math.abs(y1 - y0));
    this.image.setAttribute('href', c.toDataURL());
  };
  Plot.prototype.path = function (key, xs, ys, style) {
    var node = this.nodes[key], d = '', self = this;
    if (!node) {
      node = this.nodes[key] = svg('path', { fill: 'none', stroke: style.colour, 'stroke-width': style.width || 2.5,
                                             'stroke-dasharray': style.dash || 'none', class: 'vae-explorer-curve' },
                                   this.layers);
    }
    for (var i = 0; i < xs.length; i++) { d += (i ? 'L' : 'M') + self.px(xs[i]).toFixed(2) + ',' + self.py(ys[i]).toFixed(2); }
    node.setAttribute('d', d);
  };
  Plot.prototype.bars = function (key, centres, heights, width, colour) {  // all bars of a series: one path
    var node = this.nodes[key], d = '', y1 = this.py(0);
    if (!node) {  // crisp edges: axis-aligned rectangles need no anti-aliasing (a cheaper paint)
      node = this.nodes[key] = svg('path', { fill: colour, 'fill-opacity': 0.6, 'shape-rendering': 'crispEdges' },
                                   this.layers);
    }
    for (var i = 0; i < centres.length; i++) {
      var x0 = this.px(centres[i] - width / 2), x1 = this.px(centres[i] + width / 2), y0 = this.py(heights[i]);
      d += 'M' + x0.toFixed(2) + ',' + y1.toFixed(2) + 'H' + x1.toFixed(2) + 'V' + y0.toFixed(2) + 'H' + x0.toFixed(2) + 'Z';
    }
    node.setAttribute('d', d);
  };
  Plot.prototype.marker = function (key, x, y, style) {
    var node = this.nodes[key];
    if (!node) {
      node = this.nodes[key] = svg('circle', { r: style.radius || 7, fill: 'none', stroke: style.colour,
                                               'stroke-width': 3, class: 'vae-explorer-marker' }, this.layers);
    }
    node.setAttribute('cx', this.px(x).toFixed(2)); node.setAttribute('cy', this.py(y).toFixed(2));
  };
  Plot.prototype.scatter = function (key, pts, by, style) {
    // points (rows of pts) coloured by the band of by[i] among style.edges: one path per colour, built as one string
    var node = this.nodes[key], r = style.radius || 2.2, self = this;
    var bands = style.colours.map(function () { return []; });
    if (!node) {
      node = this.nodes[key] = svg('g', { class: 'vae-explorer-points' }, this.layers);
      style.colours.forEach(function (c) { svg('path', { fill: c, 'fill-opacity': 0.8 }, node); });
    }
    var arc = 'a' + r + ',' + r + ' 0 1,0 ' + 2 * r + ',0a' + r + ',' + r + ' 0 1,0 ' + (-2 * r) + ',0';
    for (var i = 0; i < pts.rows; i++) {
      var b = 0, value = by[i];
      while (b < style.edges.length && value >= style.edges[b]) { b++; }
      var cx = self.px(pts.d[i * pts.cols]), cy = self.py(pts.d[i * pts.cols + 1]);
      bands[b].push('M' + (cx - r).toFixed(1) + ',' + cy.toFixed(1) + arc);
    }
    for (var k = 0; k < bands.length; k++) { node.childNodes[k].setAttribute('d', bands[k].join('')); }
  };
  Plot.prototype.points = function (groups) {
    var g = svg('g', { class: 'vae-explorer-points' }, this.layers), self = this;
    groups.forEach(function (group) {
      var d = '', r = group.size || 2.2;
      for (var i = 0; i < group.x.length; i++) {
        var cx = self.px(group.x[i]), cy = self.py(group.y[i]);
        d += 'M' + (cx - r).toFixed(1) + ',' + cy.toFixed(1) + 'a' + r + ',' + r + ' 0 1,0 ' + 2 * r + ',0a' + r + ',' + r +
             ' 0 1,0 ' + (-2 * r) + ',0';
      }
      svg('path', { d: d, fill: group.colour, 'fill-opacity': group.opacity || 0.75, stroke: group.stroke || 'none' }, g);
    });
  };


  // ---------------------------------------------------------------- the explorer's look (light and dark pages)
  var CSS = [
    // contain: a redraw inside an explorer never lays out or repaints the rest of a long chapter page
    // a light card; in the book's dark theme a dark one (the html[data-theme="dark"] rules at the end)
    '.vae-explorer{margin:1em 0;padding:.6em .8em;border:1px solid #bbb;border-radius:6px;max-width:100%;',
    'background:#fff;color:#222;color-scheme:light;',
    'contain:layout paint}',
    '.vae-explorer-heading{font-weight:600;margin-bottom:.4em}',
    '.vae-explorer-controls{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;margin-bottom:.4em}',
    '.vae-explorer-control{display:inline-flex;align-items:center;gap:.4em;font-size:.95em}',
    // a slider and its value are size-contained (each in a span of its own: a flex item cannot be a layout root),
    // so that moving z lays out just them, not the page (chapter 7: 26,000 layout objects)
    '.vae-explorer-control input[type=range]{width:11em;max-width:40vw;height:1.4em;contain:strict;margin:0;',
    'display:inline-block;vertical-align:middle}',
    '.vae-explorer-control output{font-family:monospace;display:inline-block;height:1.3em;line-height:1.3em;',
    'contain:strict;white-space:nowrap;vertical-align:middle}',
    '.vae-explorer-panels{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}',
    '.vae-explorer-panel{flex:1 1 260px;max-width:420px;min-width:0}',
    '.vae-explorer-image{flex:0 1 200px}',
    '.vae-explorer-image canvas,.vae-explorer-pad-canvas{width:100%;max-width:200px;aspect-ratio:1;',
    'image-rendering:pixelated;border:1px solid #888;display:block;background:#fff}',
    '.vae-explorer-pad{flex-direction:column;align-items:flex-start}',
    '.vae-explorer-pad-canvas{width:160px;cursor:crosshair}',
    '.vae-explorer-plot{width:100%;height:auto;display:block;overflow:visible;font:12px sans-serif;fill:currentColor}',
    '.vae-explorer-plot:focus,.vae-explorer-pad-canvas:focus{outline:3px solid #0072B2;outline-offset:2px}',
    '.vae-explorer-plot .vae-explorer-frame{fill:none;stroke:#888}',
    '.vae-explorer-plot .vae-explorer-axes line{stroke:#888}',
    '.vae-explorer-plot .vae-explorer-title{font-size:13px}',
    '.vae-explorer-plot .vae-explorer-axis-title{font-size:13px}',
    '.vae-explorer-pixels{image-rendering:pixelated}',
    '.vae-explorer-title{font-size:.9em;margin-bottom:.2em}',
    '.vae-explorer-readout{font-family:monospace;font-size:.9em;margin:.5em 0;white-space:pre-wrap;contain:strict}',
    '.vae-explorer figcaption{font-size:.9em;color:#444;text-align:left;margin-top:.3em}',
    '.vae-explorer-legend{display:flex;flex-wrap:wrap;gap:.2em .9em;font-size:.85em}',
    '.vae-explorer-legend i{display:inline-block;width:1.4em;height:0;border-top-width:3px;margin-right:.3em;',
    'vertical-align:middle}',
    '.vae-explorer-legend i.dot{width:.7em;height:.7em;border-radius:50%;border-top-width:0}',
    '.vae-explorer-button{padding:.2em .7em;border:1px solid #888;border-radius:4px;background:#E69F00;color:#000;',
    'cursor:pointer}',
    '.vae-explorer-button:focus{outline:3px solid #0072B2}',
    '.vae-explorer-pad-buttons{display:flex;flex-wrap:wrap;gap:.3em}',
    '.vae-explorer-pad-buttons .vae-explorer-button{background:transparent;color:inherit}',
    // the book's dark theme (pydata-sphinx-theme: <html data-theme="dark">): a dark card with light text; images and
    // colour maps keep their own light frame; the Okabe-Ito black (curves, points, legend keys) becomes light grey
    'html[data-theme="dark"] .vae-explorer{background:#1e1e1e;color:#e6e6e6;border-color:#555;color-scheme:dark}',
    'html[data-theme="dark"] .vae-explorer figcaption{color:#bdbdbd}',
    'html[data-theme="dark"] .vae-explorer-plot .vae-explorer-frame,',
    'html[data-theme="dark"] .vae-explorer-plot .vae-explorer-axes line{stroke:#9a9a9a}',
    'html[data-theme="dark"] .vae-explorer [stroke="#000000"],html[data-theme="dark"] .vae-explorer [stroke="#000"]',
    '{stroke:#d9d9d9}',
    'html[data-theme="dark"] .vae-explorer [fill="#000000"],html[data-theme="dark"] .vae-explorer [fill="#000"]',
    '{fill:#d9d9d9}',
    'html[data-theme="dark"] .vae-explorer-legend i[style*="#000000"]{border-color:#d9d9d9!important}',
    'html[data-theme="dark"] .vae-explorer-legend i.dot[style*="#000000"]{background:#d9d9d9!important}',
    'html[data-theme="dark"] .vae-explorer-plot:focus,html[data-theme="dark"] .vae-explorer-pad-canvas:focus,',
    'html[data-theme="dark"] .vae-explorer-button:focus{outline-color:#56B4E9}'
  ].join('\n');
  function addStyle(doc) {
    if (!doc || doc.getElementById('vae-explorer-style')) { return; }
    var style = doc.createElement('style');
    style.id = 'vae-explorer-style';
    style.textContent = CSS;
    (doc.head || doc.documentElement).appendChild(style);
  }

  // ---------------------------------------------------------------- one explorer
  function render(host, spec, engine) {
    var data = {}, values = {}, panels = [], uid = 'vx-' + Math.random().toString(36).slice(2);
    addStyle(host.ownerDocument);
    var names = Object.keys(spec.data || {}), scaled = function (n) { return typeof spec.data[n].scale === 'string'; };
    // per-row scales are arrays of their own: decode them before the weights that use them
    names.filter(function (n) { return !scaled(n); }).concat(names.filter(scaled)).forEach(function (name) {
      data[name] = decodeData(spec.data[name], data);
    });
    var fig = el('figure', { class: 'vae-explorer', role: 'figure', 'aria-labelledby': uid + '-cap' }, host);
    el('div', { class: 'vae-explorer-heading' }, fig).textContent = spec.title;
    var controls = el('div', { class: 'vae-explorer-controls' }, fig);
    var body = el('div', { class: 'vae-explorer-panels' }, fig);
    var readout = el('p', { class: 'vae-explorer-readout', 'aria-live': 'polite', id: uid + '-readout' }, fig);
    var readoutHeight = 0, readoutChars = -1;
    el('figcaption', { id: uid + '-cap' }, fig).textContent = spec.caption || spec.title;
    var inputs = {};

    spec.controls.forEach(function (c) {
      // a label activates its first control on any click inside it: a pad (with its buttons) or a button is a div
      var tag = c.kind === 'pad' || c.kind === 'button' ? 'div' : 'label';
      var box = el(tag, { class: 'vae-explorer-control' }, controls), id = uid + '-' + c.name;
      if (c.kind === 'slider') {
        values[c.name] = c.value;
        if (c.snap) { values[c.name + '#index'] = Math.round((c.value - c.low) / c.step); }
        el('span', {}, box).textContent = c.label + ' ';
        var input = el('input', { type: 'range', min: c.low, max: c.high, step: c.step, value: c.value, id: id,
                                  'aria-describedby': uid + '-readout' }, el('span', {}, box));
        var shown = el('output', { for: id }, el('span', {}, box));
        shown.textContent = sliderText(c, c.value);
        shown.style.width = sliderWidth(c) + 'ch';  // its widest text: the value's box never changes size
        input.addEventListener('input', function () { set(c.name, parseFloat(input.value)); });
        inputs[c.name] = { input: input, shown: shown, spec: c };
      } else if (c.kind === 'choice') {
        values[c.name] = c.value;
        values[c.name + '#index'] = c.value;
        el('span', {}, box).textContent = c.label + ' ';
        var sel = el('select', { id: id }, box);
        c.options.forEach(function (o, k) { el('option', { value: k }, sel).textContent = o; });
        sel.value = String(c.value);
        sel.addEventListener('change', function () { set(c.name, parseInt(sel.value, 10)); });
        inputs[c.name] = { input: sel, spec: c };
      } else if (c.kind === 'button') {
        var button = el('button', { type: 'button', class: 'vae-explorer-button' }, box);
        button.textContent = c.label;
        button.addEventListener('click', function () { action(c); });
        inputs[c.name] = { input: button, spec: c };
      } else if (c.kind === 'pad') {
        values[c.name] = M(1, c.rows * c.cols, Float64Array.from(c.value));
        inputs[c.name] = { spec: c, pad: drawingPad(c, box) };
      }
    });

    function drawingPad(c, box) {
      box.classList.add('vae-explorer-pad');
      el('span', {}, box).textContent = c.label;
      var canvas = el('canvas', { width: c.cols, height: c.rows, tabindex: 0, class: 'vae-explorer-pad-canvas',
                                  role: 'img', 'aria-label': c.label + ' (draw with a mouse, pen or finger)' }, box);
      var row = el('span', { class: 'vae-explorer-pad-buttons' }, box);
      var ctx = canvas.getContext('2d'), drawing = false;
      function show() { paint(ctx, values[c.name].d, c.rows, c.cols, [0, c.max], 'greys'); }
      function ink(e) {  // a round brush of radius 0.9 pixel, soft edge, adds ink up to the top level
        var box2 = canvas.getBoundingClientRect(), u = (e.clientX - box2.left) / box2.width * c.cols - 0.5;
        var w = (e.clientY - box2.top) / box2.height * c.rows - 0.5, x = values[c.name].d;
        for (var r = 0; r < c.rows; r++) {
          for (var q = 0; q < c.cols; q++) {
            var dist = Math.hypot(q - u, r - w), add = Math.max(0, Math.min(1, 1.4 - dist)) * c.max * 0.5;
            x[r * c.cols + q] = Math.min(c.max, Math.round(x[r * c.cols + q] + add));
          }
        }
        show(); update();
      }
      canvas.addEventListener('pointerdown', function (e) {
        drawing = true; canvas.setPointerCapture(e.pointerId); ink(e); e.preventDefault();
      });
      canvas.addEventListener('pointermove', function (e) { if (drawing) { ink(e); } });
      canvas.addEventListener('pointerup', function () { drawing = false; });
      canvas.addEventListener('pointercancel', function () { drawing = false; });
      canvas.style.touchAction = 'none';
      function button(label, f) {
        var b = el('button', { type: 'button', class: 'vae-explorer-button' }, row);
        b.textContent = label;
        b.addEventListener('click', function () { f(); show(); update(); });
      }
      var example = 0, noise = 1;
      button('clear', function () { values[c.name].d.fill(0); });
      button('load a test digit', function () {
        var ex = c.examples[example++ % c.examples.length];
        for (var i = 0; i < ex.length; i++) { values[c.name].d[i] = ex[i]; }
      });
      button('add noise', function () {  // a fixed pseudo-random sequence: the same noise in every browser
        var x = values[c.name].d;
        for (var i = 0; i < x.length; i++) {
          noise = (noise * 16807) % 2147483647;
          x[i] = Math.min(c.max, Math.max(0, x[i] + (noise % 5) - 2));
        }
      });
      show();
      return { show: show };
    }

    spec.panels.forEach(function (p) {
      var wrap = el('div', { class: 'vae-explorer-panel vae-explorer-' + p.kind }, body);
      if (p.kind === 'image') {
        el('div', { class: 'vae-explorer-title' }, wrap).textContent = p.title;
        var canvas = el('canvas', { width: p.cols, height: p.rows, role: 'img', 'aria-label': p.title }, wrap);
        panels.push({ spec: p, ctx: canvas.getContext('2d'), canvas: canvas });
        return;
      }
      var plot = new Plot(p, wrap);
      panels.push({ spec: p, plot: plot });
      if (p.background && p.background.data) {
        var b = p.background;
        plot.bitmap(data[b.data], b.rows, b.cols, b.range, b.colormap, b.extent, b.blank);
      }
      (p.layers || []).forEach(function (layer) {
        if (layer.kind === 'points') { plot.points(layer.groups); }
      });
      if (p.legend) {
        var legend = el('div', { class: 'vae-explorer-legend' }, wrap);
        p.legend.forEach(function (item) {
          var s = el('span', {}, legend);
          el('i', item.dot ? { class: 'dot', style: 'background:' + item.colour }
                           : { style: 'border-color:' + item.colour + ';border-style:' + (item.dash ? 'dashed' : 'solid') }, s);
          s.appendChild(document.createTextNode(item.label));
        });
      }
      if (p.drag) { draggable(plot, p.drag); }
    });

    function draggable(plot, names) {
      var node = plot.root, dragging = false;
      node.setAttribute('tabindex', '0');
      node.setAttribute('role', 'application');
      node.setAttribute('aria-roledescription', 'two-dimensional picker');
      node.setAttribute('aria-describedby', uid + '-readout');
      function move(e) {
        var p = plot.fromPixel(e.clientX, e.clientY);
        setMany([[names[0], p[0]], [names[1], p[1]]]);
      }
      node.addEventListener('pointerdown', function (e) {
        dragging = true; node.setPointerCapture(e.pointerId); move(e); e.preventDefault(); node.focus();
      });
      node.addEventListener('pointermove', function (e) { if (dragging) { move(e); } });
      node.addEventListener('pointerup', function () { dragging = false; });
      node.addEventListener('pointercancel', function () { dragging = false; });
      node.style.touchAction = 'none';
      node.addEventListener('keydown', function (e) {
        var dx = { ArrowLeft: -1, ArrowRight: 1 }[e.key] || 0, dy = { ArrowDown: -1, ArrowUp: 1 }[e.key] || 0;
        if (!dx && !dy) { return; }
        e.preventDefault();
        var k = e.shiftKey ? 10 : 1, a = inputs[names[0]].spec, b = inputs[names[1]].spec;
        setMany([[names[0], values[names[0]] + dx * k * a.step], [names[1], values[names[1]] + dy * k * b.step]]);
      });
    }

    function sliderText(c, value) {  // a snapped slider's label for its step, or its value
      return c.labels ? c.labels[Math.round((value - c.low) / c.step)] : value.toFixed(c.digits);
    }
    function sliderWidth(c) {  // characters of the slider's widest text (its labels, or its two ends)
      var texts = c.labels || [c.low.toFixed(c.digits), c.high.toFixed(c.digits)];
      return Math.max.apply(null, texts.map(function (t) { return String(t).length; }));
    }
    function clampToSlider(name, value) {
      var c = inputs[name] && inputs[name].spec;
      if (!c || c.kind !== 'slider') { return value; }
      var v = Math.min(c.high, Math.max(c.low, value));
      return c.snap ? c.low + Math.round((v - c.low) / c.step) * c.step : v;
    }
    function setMany(pairs) {
      pairs.forEach(function (p) {
        var name = p[0], value = clampToSlider(name, p[1]), box = inputs[name];
        values[name] = value;
        if (box && box.spec.kind === 'choice') { values[name + '#index'] = value; box.input.value = String(value); }
        if (box && box.spec.kind === 'slider') {
          if (box.spec.snap) { values[name + '#index'] = Math.round((value - box.spec.low) / box.spec.step); }
          if (Math.abs(parseFloat(box.input.value) - value) > 1e-12) { box.input.value = value; }
          box.shown.textContent = sliderText(box.spec, value);
        }
      });
      update();
    }
    function set(name, value) { setMany([[name, value]]); }

    function action(c) {  // a button: the engine runs its action (e.g. gradient ascent), then values update
      engine.action(c, values, data, setMany);
    }

    function draw() {
      panels.forEach(function (p) {
        var s = p.spec;
        if (s.kind === 'image') {
          paint(p.ctx, asMatrix(values[s.output]).d, s.rows, s.cols, s.range, s.colormap);
          return;
        }
        var plot = p.plot;
        if (s.ranges) { plot.rescale(values[s.ranges].x, values[s.ranges].y); }
        if (s.background && s.background.output) {
          var b = s.background, val = asMatrix(values[b.output]).d, top = [];
          for (var r = b.rows - 1; r >= 0; r--) {
            for (var c = 0; c < b.cols; c++) { top.push(val[r * b.cols + c]); }
          }
          plot.bitmap(top, b.rows, b.cols, b.range, b.colormap, b.extent);
        }
        (s.layers || []).forEach(function (layer, k) {
          if (layer.kind === 'marker') { plot.marker(k, num(values[layer.x]), num(values[layer.y]), layer); }
          else if (layer.kind === 'curve') {
            var curve = values[layer.output];
            plot.path(k, curve.x, curve.y, layer);
          } else if (layer.kind === 'bars') {
            var bars = values[layer.output];
            plot.bars(k, bars.x, bars.y, bars.width, layer.colour);
          } else if (layer.kind === 'scatter') {
            plot.scatter(k, asMatrix(values[layer.output]), asMatrix(values[layer.colour_by]).d, layer);
          } else if (layer.kind === 'vline') {
            var xv = values[layer.output];
            plot.path(k, [xv, xv], [s.y.range[0], s.y.range[1]], layer);
          }
        });
      });
      var text = format(spec.readout, values);
      readout.textContent = text;
      // the readout is size-contained (CSS contain: strict), so new text repaints only itself, not the explorer's
      // plots (a chapter 4 frame: 18 ms of pre-paint and paint -> 6 ms); its height follows its text, growing only,
      // and is measured (a forced layout) only when the text is longer than any before
      if (text.length > readoutChars) {
        readoutChars = text.length;
        var tall = readout.scrollHeight;
        if (tall > readoutHeight) { readoutHeight = tall; readout.style.height = tall + 'px'; }
      }
      fig.dataset.values = JSON.stringify(summary());
    }
    function summary() {  // the numbers a test or a screen reader may want, as plain JSON
      var out = {};
      Object.keys(values).forEach(function (k) {
        var v = values[k];
        if (typeof num(v) === 'number') { out[k] = num(v); }
      });
      return out;
    }
    var seq = 0;
    function update() {
      seq += 1;
      engine.update(values, data, spec.program, seq, draw);
    }
    // In JupyterLab a key pressed in the explorer is the explorer's (an arrow moves z, not the notebook's active
    // cell). Lumino skips its shortcuts for an element marked data-lm-suppress-shortcuts, but it tests a binding's
    // selector (e.g. "... :focus") against the focused element before it looks for the mark on its ancestors: so
    // every element that can take the focus carries the mark itself.
    Array.prototype.forEach.call(fig.querySelectorAll('input, select, button, [tabindex]'), function (node) {
      node.setAttribute('data-lm-suppress-shortcuts', 'true');
    });
    host.explorer = {
      set: set, setMany: setMany, update: update, values: function () { return values; }, data: data,
      figure: fig, spec: spec
    };
    update();
    return host.explorer;
  }

  // ---------------------------------------------------------------- engines: the page itself, or a kernel
  var staticEngine = {
    update: function (values, data, program, seq, draw) { runProgram(program, values, data); draw(); },
    action: function (c, values, data, setMany) {
      if (c.action === 'ascend') { ascend(c, values, data, setMany); }
    }
  };
  // Adam on the quadrature ELBO over (μ₁, μ₂, log σ₁, log σ₂), as torch.optim.Adam with the given settings; the
  // sliders follow every few steps so the reader sees q move.
  function ascend(c, values, data, setMany) {
    var names = c.q, p = names.map(function (n) { return values[n]; }), m = [0, 0, 0, 0], s = [0, 0, 0, 0];
    var b1 = 0.9, b2 = 0.999, op = c.op, v = {};
    for (var t = 1; t <= c.steps; t++) {
      v = Object.assign({}, values);
      names.forEach(function (n, k) { v[n] = p[k]; });
      ops.quadrature_elbo(op, v, data);
      var g = v[op.output + '_grad'];
      for (var k = 0; k < 4; k++) {
        var grad = -g[k];  // Adam minimises −L
        m[k] = b1 * m[k] + (1 - b1) * grad; s[k] = b2 * s[k] + (1 - b2) * grad * grad;
        var mh = m[k] / (1 - Math.pow(b1, t)), sh = s[k] / (1 - Math.pow(b2, t));
        p[k] -= c.learning_rate * mh / (Math.sqrt(sh) + 1e-8);
      }
    }
    setMany(names.map(function (n, k) { return [n, p[k]]; }));
  }

  // where the book keeps the explorers' large arrays: beside this script (see _ext/static_page.py)
  var script = typeof document !== 'undefined' && document.currentScript;
  var dataRoot = script && script.src ? script.src.replace(/[^/]*$/, '') + 'explorer-data/' : 'explorer-data/';

  function mount(node) {
    if (node.explorer) { return node.explorer; }
    var spec = JSON.parse(node.querySelector('script[type="application/json"]').textContent);
    var entries = Object.keys(spec.data || {}).map(function (k) { return spec.data[k]; });
    var missing = entries.filter(function (e) { return e.external && !external[e.external]; });
    if (!missing.length) {
      entries.forEach(function (e) { if (e.external) { e.b64 = external[e.external]; } });
      return render(node, spec, staticEngine);
    }
    node.dataset.explorerLoading = String(missing.length);
    missing.forEach(function (e) {
      var first = !pending[e.external];
      (pending[e.external] = pending[e.external] || []).push(function () { if (!node.explorer) { mount(node); } });
      if (first) {
        var s = document.createElement('script');
        // a compressible array also comes deflated (<digest>.z.js, _ext/static_page.py), for browsers that inflate
        s.src = dataRoot + e.external + (e.packed && typeof DecompressionStream === 'function' ? '.z' : '') + '.js';
        s.onerror = function () { node.textContent = 'This explorer could not load its data (' + s.src + ').'; };
        document.head.appendChild(s);
      }
    });
    return null;
  }
  // An explorer in the viewport is mounted at once; the others when the main thread is idle (at most IDLE_WAIT_MS
  // later), so the one the reader sees is drawn first: mounting decodes an explorer's arrays and runs its program
  // (30-70 ms for chapter 7's decoders), and its first frame waits for every mount in the same task.
  var IDLE_WAIT_MS = 2000;
  function mountAll(rootNode) {
    Array.prototype.forEach.call((rootNode || document).querySelectorAll('.vae-explorer-host'), function (n) {
      if (n.explorer) { return; }
      var box = n.getBoundingClientRect();
      if ((box.bottom > 0 && box.top < window.innerHeight) || !window.requestIdleCallback) { mount(n); }
      else { window.requestIdleCallback(function () { mount(n); }, { timeout: IDLE_WAIT_MS }); }
    });
  }
  root.vaeExplorer = {
    version: 1, ops: ops, runProgram: runProgram, render: render, mount: mount, mountAll: mountAll,
    staticEngine: staticEngine, M: M, decodeData: decodeData, asMatrix: asMatrix,
    data: function (id, payload, packing) {
      if (packing) {  // deflated bytes: inflated by the browser, then handed on as bytes
        new Response(new Blob([decodeB64(payload)]).stream().pipeThrough(new DecompressionStream(packing)))
          .arrayBuffer().then(function (buffer) { root.vaeExplorer.data(id, new Uint8Array(buffer)); });
        return;
      }
      external[id] = payload;
      (pending[id] || []).splice(0).forEach(function (f) { f(); });
    }
  };
  if (typeof document !== 'undefined') {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () { mountAll(document); });
    } else { mountAll(document); }
  }
})(typeof window !== 'undefined' ? window : globalThis);
