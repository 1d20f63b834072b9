// Bundle js/src into flyte_run_widget/static/: widget.{js,css} (the run widget),
// runs_table.{js,css} (the runs table) and page.{js,css} (the run and runs pages the service
// serves itself), each one ESM file (es2020) + its CSS.
//   node build.mjs          build
//   node build.mjs --check  fail if the committed bundle differs from a fresh build
import { build } from 'esbuild'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const staticDir = join(here, '..', 'flyte_run_widget', 'static')
// Per entry. 40 kB before the action tree (tree.js and its styles, ~8 kB minified) joined the log view;
// 48 kB before the hosts' fallbacks (outbox.js: Colab's text transport, marimo's replay, ~1 kB).
// The page holds the widget and the runs table, plus what the kernel does for them (connect.js,
// page_*.js); it is loaded by a browser tab, never by a notebook.
const LIMITS = { widget: 50 * 1024, runs_table: 48 * 1024, page: 76 * 1024 }
const check = process.argv.includes('--check')
const outdir = check ? mkdtempSync(join(tmpdir(), 'frw-')) : staticDir

await build({
  entryPoints: {
    widget: join(here, 'src', 'index.js'),
    runs_table: join(here, 'src', 'runs_table.js'),
    page: join(here, 'src', 'page.js'),
  },
  outdir,
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  banner: { js: '/* flyte-run-widget front end; bundles anser (MIT, github.com/IonicaBizau/anser) */' },
  logLevel: 'warning',
})

let stale = false
let over = false
for (const [entry, limit] of Object.entries(LIMITS)) {
let total = 0
for (const file of [`${entry}.js`, `${entry}.css`]) {
  const text = readFileSync(join(outdir, file), 'utf8')
  total += Buffer.byteLength(text)
  console.log(`${file}: ${(Buffer.byteLength(text) / 1024).toFixed(1)} kB`)
  if (check && text !== readFileSync(join(staticDir, file), 'utf8')) {
    console.error(`${file} is out of date: run \`npm run build\` and commit it`)
    stale = true
  }
}
console.log(`${entry} total: ${(total / 1024).toFixed(1)} kB (limit ${limit / 1024} kB)`)
over ||= total > limit
}
if (check) rmSync(outdir, { recursive: true, force: true })
if (over) {
  console.error('bundle is over its size limit')
  process.exit(1)
}
if (stale) process.exit(1)
