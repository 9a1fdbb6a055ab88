// Build the book's partial plotly.js bundle: plotly.js's core and only the trace types the book's figures use.
//
// The output is committed (book/_static/vendor/plotly-book.min.js): building the book needs neither npm nor the
// internet. Rebuild it when plotly (the Python package) moves to another plotly.js version, or when a figure needs a
// trace type the bundle lacks (tests/test_pages.py lists the types the built pages use and fails on a missing one):
//
//   mkdir /tmp/plotly-bundle && cd /tmp/plotly-bundle
//   npm pack plotly.js@<version> && tar xzf plotly.js-<version>.tgz && cd package
//   npm install --omit=dev --ignore-scripts
//   npm install --no-save --ignore-scripts esbuild@0.28 esbuild-plugin-glsl@1.4.2 \
//       esbuild-plugin-environment@0.5.0 esbuild-plugin-inline-css@0.0.1
//   node /path/to/repo/tools/plotly_bundle/build.js /path/to/repo/book/_static/vendor/plotly-book.min.js
//
// <version> is the plotly.js that plotly.py bundles: python -c "import plotly.offline as o; print(o.get_plotlyjs_version())".
// The esbuild settings are plotly.js's own (its esbuild-config.js), minified as its dist/*.min.js files are.
'use strict';

const path = require('path');
const fs = require('fs');

const { traces: TRACES, components_left_out: LEFT_OUT = [] } = require('./traces.json');
const root = process.cwd(); // the unpacked plotly.js package
const out = path.resolve(process.argv[2] || 'plotly-book.min.js');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
if (pkg.name !== 'plotly.js') { throw new Error(`run this in the unpacked plotly.js package, not ${root}`); }

// plotly.js's core (src/core.js) registers every layout component; the book's figures have no sliders, menus, range
// sliders or selectors and no 3-D scenes, so the bundle's core is src/core.js without the components traces.json lists
// in components_left_out (the build fails if one is not found there)
let core = fs.readFileSync(path.join(root, 'src', 'core.js'), 'utf8');
for (const name of LEFT_OUT) {
  const line = new RegExp(`\\n\\s*require\\('\\./components/${name}'\\),?`);
  if (!line.test(core)) { throw new Error(`src/core.js does not register the component ${name}`); }
  core = core.replace(line, '');
}
const coreFile = path.join(root, 'src', 'core-vae-book.js');
fs.writeFileSync(coreFile, core);

const entry = path.join(root, 'lib', 'index-vae-book.js');
fs.writeFileSync(entry, [
  "'use strict';",
  "var Plotly = require('../src/core-vae-book');",
  'Plotly.register([',
  ...TRACES.filter(t => t !== 'scatter').map(t => `  require('./${t}'),`),  // scatter is part of the core
  ']);',
  'module.exports = Plotly;', ''].join('\n'));

const need = name => require(require.resolve(name, { paths: [root] }));  // from the package's node_modules
const { build } = need('esbuild');
const { environmentPlugin } = need('esbuild-plugin-environment');
const { glsl } = need('esbuild-plugin-glsl');
const InlineCSSPlugin = need('esbuild-plugin-inline-css');

const banner = `/**
* plotly.js v${pkg.version}, partial bundle for the VAE book (tools/plotly_bundle/build.js)
* traces: ${TRACES.join(', ')} (no map subplots)
* components left out: ${LEFT_OUT.join(', ') || 'none'}
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
*/`;

// plotly.js's registry requires maplibre-gl's style sheet (83 KB, inlined) for map subplots; the book has none, so
// the bundle carries an empty one in its place
const noMapStyle = {
  name: 'no-map-style',
  setup(b) {
    b.onResolve({ filter: /^maplibre-gl\/dist\/maplibre-gl\.css$/ }, () => ({ path: 'maplibre-gl.css', namespace: 'empty' }));
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: '', loader: 'js' }));
  },
};

build({
  entryPoints: [entry],
  outfile: out,
  format: 'iife',
  globalName: 'Plotly',
  bundle: true,
  minify: true,
  sourcemap: false,
  plugins: [noMapStyle, InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' },
  target: 'es2016',
  banner: { js: banner },
  logLevel: 'info',
}).then(() => {
  fs.unlinkSync(entry);
  fs.unlinkSync(coreFile);
  console.log(`${out}: ${fs.statSync(out).size} bytes, plotly.js ${pkg.version}, traces ${TRACES.join(', ')}`);
});
