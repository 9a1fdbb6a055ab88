/* Static latent explorer (vae_lib.explorer.phase_diagram_figure): runs in the built HTML with no kernel.
 * Plotly calls this after drawing a figure; it acts only on figures whose layout.meta.latent_explorer
 * holds the precomputed lookup grid of decoded outputs. Moving z (two sliders, or a click on the phase
 * diagram) snaps z to the nearest lookup point and redraws the decoded output, the marker and the label.
 *
 * Speed: any Plotly call recomputes the defaults of the whole figure (every trace, both sliders with their 31
 * steps; about 7 ms on chapter 5's explorer with its ten digit traces), and a new heatmap z makes Plotly.restyle
 * redraw all of it (45 to 120 ms a move). So only the first move is drawn by plotly (Plotly.restyle); after it the
 * script checks that it can reproduce exactly what plotly drew: the decoded panel's bitmap byte for byte (painted
 * as plotly's heatmap code paints it: one pixel per value through the trace's colour scale, as a PNG), the
 * marker's SVG path, the label's text, and plotly's calcdata holding the rows (what hover reads). If so, every
 * later move is drawn in place, with no Plotly call: the bitmap, the path and the text are set in the DOM, and
 * gd.data, gd._fullData and gd.calcdata get the new rows, gd.layout the new marker, label and slider positions,
 * so hover and any later redraw by plotly agree with what is shown (a browser test redraws and compares). If the
 * check fails (another plotly.js, another drawing path), every move uses Plotly.restyle.
 * gd.dataset.explorerDraw says which: "in-place" or "plotly". */
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
  function markerNode() { return gd.querySelector('.shapelayer path[data-index="0"]'); }
  function labelNode() {
    return gd.querySelector('.annotation[data-index="' + m.label_annotation + '"] text.annotation-text');
  }
  // the marker's SVG path, as plotly draws a circle shape from x0..x1, y0..y1 (pixels include the axes' offsets)
  function markerPath(z1, z2) {
    var xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = m.marker_radius;
    var x0 = xa._offset + xa.l2p(z1 - r), x1 = xa._offset + xa.l2p(z1 + r);
    var y0 = ya._offset + ya.l2p(z2 - r), y1 = ya._offset + ya.l2p(z2 + r);
    var cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, arc = 'A' + Math.abs(cx - x0) + ',' + Math.abs(cy - y0);
    var east = (cx + Math.abs(cx - x0)) + ',' + cy, north = cx + ',' + (cy - Math.abs(cy - y0));
    return 'M' + east + arc + ' 0 1,1 ' + north + arc + ' 0 0,1 ' + east + 'Z';
  }
  function samePath(a, b) {  // the same commands and numbers within a hundredth of a pixel
    var na = String(a).match(/-?[\d.]+(e-?\d+)?/g) || [], nb = String(b).match(/-?[\d.]+(e-?\d+)?/g) || [];
    return String(a).replace(/[-\d.e]/g, '') === String(b).replace(/[-\d.e]/g, '') && na.length === nb.length &&
      na.every(function (v, k) { return Math.abs(parseFloat(v) - parseFloat(nb[k])) < 0.01; });
  }
  function sameRows(a, b) {
    if (!a || a.length !== b.length) { return false; }
    for (var r = 0; r < b.length; r++) {
      if (!a[r] || a[r].length !== b[r].length) { return false; }
      for (var c = 0; c < b[r].length; c++) { if (a[r][c] !== b[r][c]) { return false; } }
    }
    return true;
  }
  // After plotly has drawn a move itself: may the next moves be drawn in place? Yes if this script reproduces what
  // plotly drew exactly: the decoded panel's bitmap (byte for byte, in one of the four pixel orders), the marker's
  // path and the label's text, and if plotly's calcdata holds the rows as given (what hover reads).
  function check(rows, z1, z2, label) {
    var node = decodedNode(), color = colorFunction(), marker = markerNode(), text = labelNode();
    var cd = gd.calcdata && gd.calcdata[m.decoded_trace] && gd.calcdata[m.decoded_trace][0];
    fast = false;
    gd.dataset.explorerDraw = 'plotly';
    if (!node || !color || !marker || !text || !cd || !sameRows(cd.z, rows)) { return; }
    if (!samePath(marker.getAttribute('d'), markerPath(z1, z2)) || text.textContent !== label) { return; }
    var drawn = node.getAttributeNS(XLINK, 'href') || node.getAttribute('href');
    [[false, false], [true, false], [false, true], [true, true]].forEach(function (f) {
      if (!fast && bitmap(rows, color, f[0], f[1]) === drawn) { fast = { flipRows: f[0], flipCols: f[1], color: color }; }
    });
    if (fast) { gd.dataset.explorerDraw = 'in-place'; }
  }
  // Redraw the decoded panel, the marker and the label in place, and keep plotly's data in step with them (gd.data
  // for any later redraw, calcdata for hover): no Plotly call, so no recomputation of the whole figure's defaults.
  function drawInPlace(rows, z1, z2, label) {
    var node = decodedNode(), marker = markerNode(), text = labelNode(), t = m.decoded_trace;
    if (!node || !marker || !text) { return false; }  // plotly redrew the figure in another way: use its API again
    node.setAttributeNS(XLINK, 'href', bitmap(rows, fast.color, fast.flipRows, fast.flipCols));
    gd.data[t].z = rows;
    gd._fullData[t].z = rows;
    gd.calcdata[t][0].z = rows;
    marker.setAttribute('d', markerPath(z1, z2));
    text.textContent = label;
    text.setAttribute('data-unformatted', label);
    return true;
  }
  function show(moveSliders) {
    var z1 = m.z1[state.i], z2 = m.z2[state.j], r = m.marker_radius, layout = gd.layout, marker = layout.shapes[0];
    var rows = image(state.i, state.j);
    var text = m.label_format.replace('{z1}', z1.toFixed(2)).replace('{z2}', z2.toFixed(2));
    marker.x0 = z1 - r; marker.x1 = z1 + r; marker.y0 = z2 - r; marker.y1 = z2 + r;
    layout.annotations[m.label_annotation].text = text;
    layout.sliders[0].active = state.i;
    layout.sliders[1].active = state.j;
    gd.dataset.explorerZ = z1.toFixed(2) + ',' + z2.toFixed(2);
    if (fast && drawInPlace(rows, z1, z2, text)) {
      // a click moves z: plotly redraws the two sliders from gd.layout (a slider move has moved its own grip)
      return moveSliders ? Plotly.relayout(gd, { 'sliders[0].active': state.i, 'sliders[1].active': state.j })
                         : Promise.resolve(gd);
    }
    // plotly redraws everything (the marker, label and sliders from gd.layout too)
    return Plotly.restyle(gd, { z: [rows] }, [m.decoded_trace]).then(function () {
      if (fast === null) { check(rows, z1, z2, text); }
      return gd;
    });
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
