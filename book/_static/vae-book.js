/* The book's page script: plotly figures drawn when they approach the viewport, in the page's light or dark theme.
 *
 * Each figure's inline script (vae_lib.display.BookHtmlRenderer) calls vaeBook.newPlot(id, data, layout, config)
 * where plotly's own HTML calls Plotly.newPlot; outside the book (Colab, a notebook's HTML output) vaeBook is absent
 * and the figure is drawn at once, as plotly draws it.
 *
 * - Lazy drawing: one IntersectionObserver with a margin of 1.5 viewport heights above and below watches every figure
 *   that is not drawn yet; a figure is drawn the first time it comes within that margin: the topmost one in the
 *   viewport at once, the others in later tasks, one figure per task, those in the viewport first, those only near
 *   it when the main thread is idle. While the page loads, the figure the reader will see first (at the top, or at
 *   the URL's #anchor) is drawn as soon as this script runs, before the observer's first callback (see the end of
 *   this file). The figure's <div> has its final height from the start (plotly.py writes it into its style), so
 *   anchors and scroll positions do not move when it is drawn. Before printing, every figure not drawn yet is drawn.
 * - Dark theme: the theme (pydata-sphinx-theme) sets <html data-theme="dark">. Then each figure is drawn with a dark
 *   paper and plot area, light text and axis lines, and any trace or shape colour darker than a luminance of 0.2
 *   (the Okabe-Ito palette's black, dark greys) as light grey; the Okabe-Ito colours themselves read well on both
 *   backgrounds and are kept, and so are colour scales (images, phase diagrams). Switching the theme redraws every
 *   drawn figure from its original description (Plotly.react), so switching back restores it exactly.
 */
(function () {
  'use strict';
  if (window.vaeBook) { return; }

  var DARK = {
    paper: '#1e1e1e', plot: '#262626', text: '#e6e6e6', grid: '#3d3d3d', line: '#9a9a9a', zero: '#6e6e6e',
    ink: '#d9d9d9'  // replaces trace and shape colours that would vanish on the dark paper
  };
  var MARGIN = '150% 0px';  // draw a figure when it is within 1.5 viewport heights of the viewport
  var figures = [];         // {gd, data, layout, config, drawn, pending}

  function isDark() { return document.documentElement.getAttribute('data-theme') === 'dark'; }

  // ------------------------------------------------------------------------------------------ colours
  var probe = null;
  function rgba(colour) {
    // any CSS colour -> [r, g, b, a] through the browser's own parser; null for what is not one
    if (typeof colour !== 'string' || !colour) { return null; }
    if (!probe) { probe = document.createElement('canvas').getContext('2d'); }
    probe.fillStyle = '#010203';
    probe.fillStyle = colour;
    var c = probe.fillStyle;
    if (c === '#010203' && colour.replace(/\s/g, '').toLowerCase() !== '#010203') { return null; }
    if (c.charAt(0) === '#') {
      return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16), 1];
    }
    var m = c.match(/[\d.]+/g);
    return m ? [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1] : null;
  }
  function luminance(colour) {  // WCAG relative luminance, 0 (black) ... 1 (white)
    var c = rgba(colour);
    if (!c) { return null; }
    var lin = c.slice(0, 3).map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  }
  function lighten(colour) {  // a colour that would vanish on the dark paper becomes light grey (alpha kept)
    var l = luminance(colour);
    if (l === null || l >= 0.2) { return colour; }
    var a = rgba(colour)[3];
    return a < 1 ? 'rgba(217,217,217,' + a + ')' : DARK.ink;
  }
  function darken(colour) {  // white outlines around markers become the plot's dark background
    var l = luminance(colour);
    return l !== null && l > 0.9 ? DARK.plot : colour;
  }

  function clone(value) {
    if (typeof structuredClone === 'function') { return structuredClone(value); }
    return JSON.parse(JSON.stringify(value));
  }
  function set(obj, key, fn) { if (obj && typeof obj[key] === 'string') { obj[key] = fn(obj[key]); } }

  function darkTrace(trace) {
    ['line', 'marker', 'error_x', 'error_y', 'textfont', 'outsidetextfont', 'insidetextfont'].forEach(function (k) {
      var part = trace[k];
      if (!part) { return; }
      if (Array.isArray(part.color)) { part.color = part.color.map(lighten); } else { set(part, 'color', lighten); }
      if (part.line) { set(part.line, 'color', darken); }
    });
    set(trace, 'fillcolor', lighten);
    if (trace.type === 'contour' && trace.contours && trace.contours.coloring === 'none') {
      trace.line = trace.line || {};
      if (!trace.line.color) { trace.line.color = DARK.ink; }
    }
    return trace;
  }

  function darkLayout(layout) {
    layout.paper_bgcolor = DARK.paper;
    layout.plot_bgcolor = DARK.plot;
    layout.font = layout.font || {};
    layout.font.color = DARK.text;
    if (layout.title && typeof layout.title === 'object' && layout.title.font) { layout.title.font.color = DARK.text; }
    Object.keys(layout).forEach(function (key) {
      if (!/^(x|y)axis\d*$/.test(key) || !layout[key]) { return; }
      var axis = layout[key];
      axis.gridcolor = DARK.grid;
      axis.zerolinecolor = DARK.zero;
      axis.linecolor = DARK.line;
      axis.tickcolor = DARK.line;
      if (axis.title && typeof axis.title === 'object' && axis.title.font) { axis.title.font.color = DARK.text; }
      if (axis.tickfont) { axis.tickfont.color = DARK.text; }
    });
    if (layout.legend) { layout.legend.bgcolor = 'rgba(0,0,0,0)'; if (layout.legend.font) { layout.legend.font.color = DARK.text; } }
    (layout.annotations || []).forEach(function (a) {
      if (a.font) { a.font.color = DARK.text; }
      set(a, 'arrowcolor', lighten);
      set(a, 'bgcolor', function () { return 'rgba(0,0,0,0)'; });
    });
    (layout.shapes || []).forEach(function (s) {
      if (s.line) { set(s.line, 'color', lighten); }
      set(s, 'fillcolor', lighten);
    });
    if (layout.coloraxis && layout.coloraxis.colorbar) { layout.coloraxis.colorbar.tickfont = { color: DARK.text }; }
    // the figure's own template (plotly.py writes plotly's default one into every figure) keeps its colourway and
    // colour scales; only its light greys go
    if (layout.template && layout.template.layout) {
      var t = layout.template.layout;
      delete t.paper_bgcolor; delete t.plot_bgcolor;
      if (t.font) { delete t.font.color; }
      ['xaxis', 'yaxis'].forEach(function (k) { if (t[k]) { delete t[k].gridcolor; delete t[k].linecolor; delete t[k].zerolinecolor; } });
    }
    return layout;
  }

  function themed(fig) {
    var data = clone(fig.data), layout = clone(fig.layout || {});
    if (!isDark()) { return { data: data, layout: layout }; }
    return { data: data.map(darkTrace), layout: darkLayout(layout) };
  }

  // ------------------------------------------------------------------------------------------ drawing
  function draw(fig) {
    if (fig.drawn) { return fig.pending; }
    fig.drawn = true;
    if (observer) { observer.unobserve(fig.gd); }
    var t = themed(fig);
    fig.theme = isDark() ? 'dark' : 'light';
    fig.pending = window.Plotly.newPlot(fig.gd, t.data, t.layout, fig.config).then(function (gd) {
      gd.setAttribute('data-vae-drawn', fig.theme);
      fig.resolve(gd);
      return gd;
    });
    return fig.pending;
  }

  // Figures in the viewport are drawn at once, in the observer's callback; the others wait in a queue and are drawn
  // one per task after those, so the figure the reader is looking at is on screen first (a plotly figure takes
  // 50-300 ms of the main thread to draw on a long page). A figure still in view is drawn in the next task; one only
  // near the viewport when the main thread is idle (requestIdleCallback, at most IDLE_WAIT_MS later), so it does not
  // hold up what the reader sees now: an explorer in view waiting for its data, MathJax's equations, the theme.
  var IDLE_WAIT_MS = 2000;
  var queue = [], queued = false;
  function inView(fig) {
    var box = fig.gd.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }
  function schedule() {
    if (queued || !queue.length) { return; }
    queued = true;
    if (inView(queue[0]) || !window.requestIdleCallback) { setTimeout(drawNext, 0); }
    else { window.requestIdleCallback(drawNext, { timeout: IDLE_WAIT_MS }); }
  }
  function drawNext() {
    queued = false;
    while (queue.length && queue[0].drawn) { queue.shift(); }
    if (!queue.length) { return; }
    draw(queue.shift()).then(schedule, schedule);
  }
  function drawSoon(fig, first) {
    if (fig.drawn || queue.indexOf(fig) >= 0) { return; }
    if (first) { queue.unshift(fig); } else { queue.push(fig); }
    schedule();
  }

  var observer = ('IntersectionObserver' in window) ? new IntersectionObserver(function (entries) {
    var inView = [];
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) { return; }
      var box = entry.boundingClientRect;
      var fig = entry.target.__vaeFigure;
      if (box.bottom > 0 && box.top < window.innerHeight) { inView.push(fig); } else { drawSoon(fig, false); }
    });
    // the first figure in view now; any other in view next, before the ones only near it
    inView.sort(function (a, b) { return a.gd.getBoundingClientRect().top - b.gd.getBoundingClientRect().top; });
    inView.slice(1).reverse().forEach(function (fig) { drawSoon(fig, true); });
    if (inView.length) { draw(inView[0]); }
  }, { rootMargin: MARGIN }) : null;

  function newPlot(id, data, layout, config) {
    var gd = typeof id === 'string' ? document.getElementById(id) : id;
    var fig = { gd: gd, data: clone(data), layout: clone(layout || {}), config: config, drawn: false };
    var done = new Promise(function (resolve) { fig.resolve = resolve; });
    gd.__vaeFigure = fig;
    figures.push(fig);
    if (observer) { observer.observe(gd); } else { draw(fig); }
    return done;
  }

  function drawAll() { return Promise.all(figures.map(draw)); }

  function retheme() {
    var theme = isDark() ? 'dark' : 'light';
    figures.forEach(function (fig) {
      if (!fig.drawn || fig.theme === theme) { return; }
      fig.theme = theme;
      fig.pending = fig.pending.then(function (gd) {
        var t = themed(fig);
        return window.Plotly.react(gd, t.data, t.layout, fig.config).then(function () {
          gd.setAttribute('data-vae-drawn', theme);
          return gd;
        });
      });
    });
  }

  new MutationObserver(retheme).observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  window.addEventListener('beforeprint', drawAll);

  window.vaeBook = { newPlot: newPlot, drawAll: drawAll, figures: figures, isDark: isDark, luminance: luminance };

  // The figures' scripts ran while the page was parsed, before plotly.js (deferred), and queued themselves
  // (vae_lib.display.draw_when_plotly_is_ready). Registered here rather than at DOMContentLoaded, the topmost figure
  // in the viewport is drawn in this task: before the deferred scripts that follow this one (MathJax, the theme's)
  // and DOMContentLoaded, whose handlers (the theme's) take 50-150 ms. A page opened at an anchor (page.html#id) is
  // scrolled there now, where the browser would scroll it after DOMContentLoaded (scrollIntoView honours the
  // theme's scroll padding as the browser's own scroll does), so the next frame shows the reader that figure.
  function scrollToAnchor() {
    if (window.scrollY !== 0 || location.hash.length < 2) { return; }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) { target.scrollIntoView(); }
  }
  function drawFirstInView() {
    var first = null, top = Infinity, height = window.innerHeight;
    figures.forEach(function (fig) {
      if (fig.drawn) { return; }
      var box = fig.gd.getBoundingClientRect();
      if (box.bottom > 0 && box.top < height && box.top < top) { first = fig; top = box.top; }
    });
    if (first) { draw(first); }
  }
  // (on every page, figures or not: the explorer runtime, deferred after this script, mounts the explorer then in
  // view at once and the others when the main thread is idle)
  scrollToAnchor();
  if (window.Plotly && window.vaeBookWaiting) {
    var waiting = window.vaeBookWaiting;
    window.vaeBookWaiting = [];
    waiting.forEach(function (drawScript) { drawScript(); });
    drawFirstInView();
  }
})();
