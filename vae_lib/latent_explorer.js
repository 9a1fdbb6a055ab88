/* Static latent explorer (vae_lib.explorer.phase_diagram_figure): runs in the built HTML with no kernel.
 * Plotly calls this after drawing a figure; it acts only on figures whose layout.meta.latent_explorer
 * holds the precomputed lookup grid of decoded outputs. Moving z (two sliders, or a click on the phase
 * diagram) snaps z to the nearest lookup point and redraws the decoded output, the marker and the label.
 *
 * Speed: a new heatmap z makes Plotly.restyle redraw the whole figure (sliders, axes, colorbar, every trace:
 * 45 to 120 ms a move on the book's pages). So after the first move, which plotly draws itself, the decoded
 * panel is redrawn in place: Plotly.animate with redraw: false puts the new z into gd.data and plotly's
 * calcdata (what hover reads) without drawing, and the panel's bitmap is painted here exactly as plotly's own
 * heatmap code paints it (one pixel per value through the trace's colour scale, as a PNG). Before using that,
 * the script checks that its bitmap of the first move is byte-for-byte the one plotly drew; if not (another
 * plotly.js, another drawing path), every move keeps using Plotly.restyle. The marker and the label are
 * written into gd.layout and redrawn alone by relayouts of attributes that only need them redrawn (their
 * unchanged opacity). */
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
  var XLINK = 'http://www.w3.org/1999/xlink';
  var fast = null;  // null: not checked yet; false: use Plotly.restyle; {flipRows, flipCols}: redraw in place

  function decodedNode() {
    var t = gd.data[m.decoded_trace];
    var nodes = gd.querySelectorAll('.subplot.' + (t.xaxis || 'x') + (t.yaxis || 'y') + ' .heatmaplayer image');
    return nodes.length === 1 ? nodes[0] : null;
  }
  function parseColor(s) {
    var k = /^rgba?\(([^)]*)\)$/.exec(String(s).replace(/\s+/g, ''));
    if (k) {
      var v = k[1].split(',').map(Number);
      return v.length >= 3 && v.every(isFinite) ? [v[0], v[1], v[2], v.length > 3 ? v[3] : 1] : null;
    }
    k = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(s));
    return k ? [parseInt(k[1], 16), parseInt(k[2], 16), parseInt(k[3], 16), 1] : null;
  }
  // value -> [r, g, b, a] as plotly's colour scale computes it (piecewise linear in RGBA between the stops,
  // clamped to [zmin, zmax]); null if the trace's scale is not an explicit list of stops
  function colorFunction() {
    var t = gd.data[m.decoded_trace], stops = t.colorscale;
    if (!Array.isArray(stops) || stops.length < 2 || typeof t.zmin !== 'number' || typeof t.zmax !== 'number') {
      return null;
    }
    if (t.reversescale) { stops = stops.map(function (s) { return [1 - s[0], s[1]]; }).reverse(); }
    var dom = [], ran = [];
    for (var k = 0; k < stops.length; k++) {
      dom.push(t.zmin + stops[k][0] * (t.zmax - t.zmin));
      ran.push(parseColor(stops[k][1]));
      if (!ran[k]) { return null; }
    }
    return function (v) {
      var s = 0;
      while (s < dom.length - 2 && v >= dom[s + 1]) { s++; }
      var u = Math.max(0, Math.min(1, (v - dom[s]) / (dom[s + 1] - dom[s]))), out = [];
      for (var c = 0; c < 4; c++) { out.push(ran[s][c] * (1 - u) + ran[s + 1][c] * u); }
      return out;
    };
  }
  function bitmap(rows, color, flipRows, flipCols) {
    var canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext('2d', { willReadFrequently: true }), pixels = ctx.createImageData(w, h);
    for (var r = 0; r < h; r++) {
      for (var c = 0; c < w; c++) {
        var rgba = color(rows[r][c]), at = ((flipRows ? h - 1 - r : r) * w + (flipCols ? w - 1 - c : c)) * 4;
        pixels.data[at] = Math.round(rgba[0]); pixels.data[at + 1] = Math.round(rgba[1]);
        pixels.data[at + 2] = Math.round(rgba[2]); pixels.data[at + 3] = Math.round(rgba[3] * 255);
      }
    }
    ctx.putImageData(pixels, 0, 0);
    return canvas.toDataURL('image/png');
  }
  // after plotly has drawn `rows` itself: which pixel order reproduces its bitmap exactly, if any
  function check(rows) {
    var node = decodedNode(), color = colorFunction();
    fast = false;
    if (!node || !color) { return; }
    var drawn = node.getAttributeNS(XLINK, 'href') || node.getAttribute('href');
    [[false, false], [true, false], [false, true], [true, true]].forEach(function (f) {
      if (!fast && bitmap(rows, color, f[0], f[1]) === drawn) { fast = { flipRows: f[0], flipCols: f[1], color: color }; }
    });
  }
  function show(moveSliders) {
    var z1 = m.z1[state.i], z2 = m.z2[state.j], r = m.marker_radius, layout = gd.layout, marker = layout.shapes[0];
    var label = layout.annotations[m.label_annotation], rows = image(state.i, state.j);
    marker.x0 = z1 - r; marker.x1 = z1 + r; marker.y0 = z2 - r; marker.y1 = z2 + r;
    label.text = m.label_format.replace('{z1}', z1.toFixed(2)).replace('{z2}', z2.toFixed(2));
    layout.sliders[0].active = state.i;
    layout.sliders[1].active = state.j;
    gd.dataset.explorerZ = z1.toFixed(2) + ',' + z2.toFixed(2);
    var node = fast ? decodedNode() : null;
    if (!node) {  // plotly redraws everything (the marker, label and sliders from gd.layout too)
      return Plotly.restyle(gd, { z: [rows] }, [m.decoded_trace]).then(function () {
        if (fast === null) { check(rows); }
        return gd;
      });
    }
    var data = Plotly.animate(gd, { data: [{ z: rows }], traces: [m.decoded_trace] },
                              { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: 'immediate' })
      .catch(function () { return gd; });  // a newer move replaced this frame before it was applied
    node.setAttributeNS(XLINK, 'href', bitmap(rows, fast.color, fast.flipRows, fast.flipCols));
    var redraw = {};
    redraw['shapes[0].opacity'] = marker.opacity === undefined ? 1 : marker.opacity;
    redraw['annotations[' + m.label_annotation + '].opacity'] = label.opacity === undefined ? 1 : label.opacity;
    if (moveSliders) { redraw['sliders[0].active'] = state.i; redraw['sliders[1].active'] = state.j; }
    return Promise.all([Plotly.relayout(gd, redraw), data]).then(function () { return gd; });
  }
  gd.on('plotly_sliderchange', function (e) {
    var k = parseInt(e.step.value, 10);
    if (e.slider.name === 'z1') { state.i = k; } else if (e.slider.name === 'z2') { state.j = k; } else { return; }
    show(false);  // plotly has already moved this slider
  });
  gd.on('plotly_click', function (e) {
    var p = e.points && e.points[0];
    if (!p || p.curveNumber !== m.mosaic_trace) { return; }
    state.i = nearest(m.z1, p.x);
    state.j = nearest(m.z2, p.y);
    show(true);
  });
  gd.explorerShow = function (i, j) { state.i = i; state.j = j; return show(true); };
})();
