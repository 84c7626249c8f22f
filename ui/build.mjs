// Build the web UI into OUTDIR (node build.mjs OUTDIR): one bundle of
// scripts and one of styles under assets/, named after their content's
// hash (cached for ever), and index.html, which names them (revalidated
// at every load).  No network: everything comes from node_modules.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUTDIR');
  process.exit(2);
}
// Every package the lockfile pins, at its version (a checkout that pulled a
// new lockfile still has the old node_modules until npm ci runs again).
const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
const stale = [];
for (const [path, pkg] of Object.entries(lock.packages || {})) {
  if (!path.startsWith('node_modules/') || pkg.optional) continue;
  const manifest = join(here, path, 'package.json');
  const have = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : null;
  if (have !== pkg.version) stale.push(`${path.slice('node_modules/'.length)} ${pkg.version} (${have ? `${have} installed` : 'missing'})`);
}
if (stale.length) {
  console.error(`${join(here, 'node_modules')} does not match ui/package-lock.json: ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ` and ${stale.length - 5} more` : ''}. Run scripts/install-deps (npm ci in ui/).`);
  process.exit(1);
}
const esbuild = await import('esbuild');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, 'src/main.jsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022', // noVNC's core/util/browser.js awaits at its top level
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
writeFileSync(join(out, 'index.html'), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>herd</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="/assets/${css}">` : ''}
<script type="module" src="/assets/${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`);
