/* Static latent explorer (vae_lib.explorer.phase_diagram_figure): runs in the built HTML with no kernel.
 * Plotly calls this after drawing a figure; it acts only on figures whose layout.meta.latent_explorer
 * holds the precomputed lookup grid of decoded outputs. Moving z (two sliders, or a click on the phase
 * diagram) snaps z to the nearest lookup point and redraws the decoded output, the marker and the label
 * in one Plotly.update call. */
(function () {
  var gd = document.getElementById('{plot_id}');
  if (!gd || !gd.layout || !gd.layout.meta || !gd.layout.meta.latent_explorer) { return; }
  var m = gd.layout.meta.latent_explorer;
  var raw = atob(m.images_b64);
  var bytes = new Uint8Array(raw.length);
  for (var b = 0; b < raw.length; b++) { bytes[b] = raw.charCodeAt(b); }
  var n1 = m.z1.length, h = m.height, w = m.width, lo = m.vmin, scale = (m.vmax - m.vmin) / 255;
  var state = { i: m.start[0], j: m.start[1] };

  function image(i, j) {
    var off = (j * n1 + i) * h * w, rows = [];
    for (var r = 0; r < h; r++) {
      var row = new Array(w);
      for (var c = 0; c < w; c++) { row[c] = lo + scale * bytes[off + r * w + c]; }
      rows.push(row);
    }
    return rows;
  }
  function nearest(values, v) {
    var best = 0;
    for (var k = 1; k < values.length; k++) {
      if (Math.abs(values[k] - v) < Math.abs(values[best] - v)) { best = k; }
    }
    return best;
  }
  function show() {
    var z1 = m.z1[state.i], z2 = m.z2[state.j], r = m.marker_radius, layout = {};
    layout['shapes[0].x0'] = z1 - r; layout['shapes[0].x1'] = z1 + r;
    layout['shapes[0].y0'] = z2 - r; layout['shapes[0].y1'] = z2 + r;
    layout['annotations[' + m.label_annotation + '].text'] = m.label_format
      .replace('{z1}', z1.toFixed(2)).replace('{z2}', z2.toFixed(2));
    layout['sliders[0].active'] = state.i;
    layout['sliders[1].active'] = state.j;
    gd.dataset.explorerZ = z1.toFixed(2) + ',' + z2.toFixed(2);
    return Plotly.update(gd, { z: [image(state.i, state.j)] }, layout, [m.decoded_trace]);
  }
  gd.on('plotly_sliderchange', function (e) {
    var k = parseInt(e.step.value, 10);
    if (e.slider.name === 'z1') { state.i = k; } else if (e.slider.name === 'z2') { state.j = k; } else { return; }
    show();
  });
  gd.on('plotly_click', function (e) {
    var p = e.points && e.points[0];
    if (!p || p.curveNumber !== m.mosaic_trace) { return; }
    state.i = nearest(m.z1, p.x);
    state.j = nearest(m.z2, p.y);
    show();
  });
  gd.explorerShow = function (i, j) { state.i = i; state.j = j; return show(); };
})();
