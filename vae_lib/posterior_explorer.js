/* Static posterior explorer (vae_lib.posterior_explorer.posterior_explorer_figure): runs in the built HTML
 * with no kernel. Plotly calls this after drawing a figure; it acts only on figures whose
 * layout.meta.posterior_explorer holds, per preset x, log p(x, z_g) on a grid of the z-plane (float32, base64).
 * For q = N(mu, diag sigma^2) it computes by quadrature, exactly as the Python side does,
 *   ELBO(q) = sum_g q(z_g) [log p(x, z_g) - log q(z_g)] dA,   log p(x) = log sum_g p(x, z_g) dA,
 *   gap = log p(x) - ELBO = KL(q || p(z|x)),
 * redraws q's 1- and 2-sigma ellipses and the readout on every slider move, and on the ascent button runs
 * Adam steps on (mu, log sigma) with the exact gradient of that sum, animating the ellipses. The state is
 * recorded in gd.dataset (explorerElbo, explorerGap, explorerLogpx, explorerQ, explorerPreset, explorerRunning). */
(function () {
  var gd = document.getElementById('{plot_id}');
  if (!gd || !gd.layout || !gd.layout.meta || !gd.layout.meta.posterior_explorer) { return; }
  var m = gd.layout.meta.posterior_explorer;
  var raw = atob(m.log_joint_b64);
  var bytes = new Uint8Array(raw.length);
  for (var b = 0; b < raw.length; b++) { bytes[b] = raw.charCodeAt(b); }
  var logJoint = new Float32Array(bytes.buffer);  // (P, n2, n1), little-endian as numpy wrote it
  var n1 = m.z1.length, n2 = m.z2.length, cells = n1 * n2, dA = m.cell_area;
  var LOG_2PI = Math.log(2 * Math.PI), NAMES = ['mu1', 'mu2', 'log_sigma1', 'log_sigma2'];
  var logEvidence = [];
  for (var p = 0; p < m.n_presets; p++) {
    var off = p * cells, mx = -Infinity, s = 0;
    for (var g = 0; g < cells; g++) { if (logJoint[off + g] > mx) { mx = logJoint[off + g]; } }
    for (g = 0; g < cells; g++) { s += Math.exp(logJoint[off + g] - mx); }
    logEvidence.push(mx + Math.log(s) + Math.log(dA));
  }
  var state = { preset: m.start.preset, q: m.start.mean.concat(m.start.log_sigma), running: false, elbo: 0 };

  // ELBO(q) by quadrature and, if wanted, its gradient in (mu1, mu2, log sigma1, log sigma2)
  function elboAndGradient(q, wantGrad) {
    var s1 = Math.exp(q[2]), s2 = Math.exp(q[3]), off = state.preset * cells;
    var elbo = 0, grad = [0, 0, 0, 0];
    for (var j = 0; j < n2; j++) {
      var u2 = (m.z2[j] - q[1]) / s2;
      for (var i = 0; i < n1; i++) {
        var u1 = (m.z1[i] - q[0]) / s1;
        var logQ = -LOG_2PI - q[2] - q[3] - 0.5 * (u1 * u1 + u2 * u2);
        var qg = Math.exp(logQ);
        if (qg === 0) { continue; }
        var f = logJoint[off + j * n1 + i] - logQ;
        elbo += qg * f;
        if (wantGrad) {  // d/dθ sum q (f) = sum q (f - 1) d log q/dθ
          var c = qg * (f - 1);
          grad[0] += c * u1 / s1; grad[1] += c * u2 / s2;
          grad[2] += c * (u1 * u1 - 1); grad[3] += c * (u2 * u2 - 1);
        }
      }
    }
    return { elbo: elbo * dA, grad: grad.map(function (v) { return v * dA; }) };
  }
  function ellipse(k) {
    var xs = [], ys = [], s1 = Math.exp(state.q[2]), s2 = Math.exp(state.q[3]), n = m.ellipse_points - 1;
    for (var t = 0; t <= n; t++) {
      var a = 2 * Math.PI * t / n;
      xs.push(state.q[0] + k * s1 * Math.cos(a)); ys.push(state.q[1] + k * s2 * Math.sin(a));
    }
    return [xs, ys];
  }
  function nearestStep(sliderIndex, v) {
    var steps = gd.layout.sliders[sliderIndex].steps, best = 0;
    for (var k = 1; k < steps.length; k++) {
      if (Math.abs(parseFloat(steps[k].value) - v) < Math.abs(parseFloat(steps[best].value) - v)) { best = k; }
    }
    return best;
  }
  // Redraws q (ellipses, mean) and the readout. Both avoid plotly's full redraw of the figure (sliders, menus,
  // heatmap, colorbar: about 75 ms), which Plotly.update would trigger because the traces' x/y and an
  // annotation's text are "calc" attributes: the readout text is written into gd.layout and redrawn alone by a
  // relayout of an attribute that only needs the annotation redrawn (its opacity, unchanged); the scatter traces
  // move with Plotly.animate and a zero-length transition, which redraws just those traces.
  function show(moveSliders) {
    var r = elboAndGradient(state.q, false), lp = logEvidence[state.preset], e1 = ellipse(1), e2 = ellipse(2);
    var readout = gd.layout.annotations[m.readout_annotation], layout = {};
    state.elbo = r.elbo;
    readout.text = m.readout_format
      .replace('{log_px}', lp.toFixed(3)).replace('{elbo}', r.elbo.toFixed(3)).replace('{gap}', (lp - r.elbo).toFixed(3));
    layout['annotations[' + m.readout_annotation + '].opacity'] = readout.opacity === undefined ? 1 : readout.opacity;
    if (moveSliders) { for (var k = 0; k < 4; k++) { layout['sliders[' + k + '].active'] = nearestStep(k, state.q[k]); } }
    gd.dataset.explorerElbo = r.elbo.toFixed(6);
    gd.dataset.explorerLogpx = lp.toFixed(6);
    gd.dataset.explorerGap = (lp - r.elbo).toFixed(6);
    gd.dataset.explorerQ = state.q.map(function (v) { return v.toFixed(6); }).join(',');
    gd.dataset.explorerPreset = String(state.preset);
    var text = Plotly.relayout(gd, layout);
    var q = Plotly.animate(gd, { data: [{ x: e1[0], y: e1[1] }, { x: e2[0], y: e2[1] }, { x: [state.q[0]], y: [state.q[1]] }],
                                 traces: m.ellipse_traces.concat([m.mean_trace]) },
                           { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: 'immediate' })
      .catch(function () { return gd; });  // a newer move replaced this frame before it was drawn
    return Promise.all([text, q]).then(function () { return gd; });
  }
  function posteriorRows(p) {
    var rows = [], off = p * cells;
    for (var j = 0; j < n2; j++) {
      var row = new Array(n1);
      for (var i = 0; i < n1; i++) { row[i] = Math.exp(logJoint[off + j * n1 + i] - logEvidence[p]); }
      rows.push(row);
    }
    return rows;
  }
  function setPreset(p) {
    state.preset = p;
    var layout = { 'title.text': m.title + '<br><sup>' + m.labels[p] + '</sup>' };
    return Plotly.update(gd, { z: [posteriorRows(p)] }, layout, [m.heatmap_trace]).then(function () { return show(false); });
  }
  // Adam (as torch.optim.Adam, betas 0.9/0.999, eps 1e-8) on -ELBO; chunks of steps per animation frame
  function ascend() {
    if (state.running) { return Promise.resolve(); }
    state.running = true; gd.dataset.explorerRunning = '1';
    var mom = [0, 0, 0, 0], vel = [0, 0, 0, 0], t = 0, lr = m.learning_rate;
    return new Promise(function (resolve) {
      function frame() {
        for (var k = 0; k < 5 && t < m.steps; k++) {
          t += 1;
          var g = elboAndGradient(state.q, true).grad, bc1 = 1 - Math.pow(0.9, t), bc2 = 1 - Math.pow(0.999, t);
          for (var d = 0; d < 4; d++) {
            var gd_ = -g[d];
            mom[d] = 0.9 * mom[d] + 0.1 * gd_;
            vel[d] = 0.999 * vel[d] + 0.001 * gd_ * gd_;
            state.q[d] -= lr / bc1 * mom[d] / (Math.sqrt(vel[d]) / Math.sqrt(bc2) + 1e-8);
          }
        }
        show(t >= m.steps).then(function () {
          if (t < m.steps) { setTimeout(frame, 15); return; }
          state.running = false; gd.dataset.explorerRunning = '0'; resolve();
        });
      }
      frame();
    });
  }
  gd.on('plotly_sliderchange', function (e) {
    var k = NAMES.indexOf(e.slider.name);
    if (k < 0 || state.running) { return; }
    state.q[k] = parseFloat(e.step.value);
    show(false);
  });
  gd.on('plotly_buttonclicked', function (e) {
    var name = e.button && e.button.name;
    if (name === 'ascend') { ascend(); return; }
    if (name && name.indexOf('preset') === 0 && !state.running) { setPreset(parseInt(name.slice(6), 10)); }
  });
  // for tests: set the preset and q = (mu1, mu2, log sigma1, log sigma2) directly; run the ascent
  gd.posteriorExplorerSet = function (p, q) {
    state.q = q.slice();
    return p === state.preset ? show(true) : setPreset(p).then(function () { return show(true); });
  };
  gd.posteriorExplorerAscend = ascend;
  gd.dataset.explorerRunning = '0';
  show(false);
})();
