// Prints the gzipped size of the built UI (what a browser downloads on first
// load) and records it in dist/bundle-size.json. Run after `vite build`.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";

const dist = new URL("../dist/", import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

let files;
try {
  files = walk(dist).filter((p) => /\.(js|css|html|svg)$/.test(p));
} catch {
  console.error("bundle-size: no dist/ — run `npm run build` first");
  process.exit(1);
}
const rows = files.map((p) => {
  const body = readFileSync(p);
  return { file: relative(dist, p), bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
});
rows.sort((a, b) => b.gzip - a.gzip);
const total = rows.reduce((s, r) => ({ bytes: s.bytes + r.bytes, gzip: s.gzip + r.gzip }), { bytes: 0, gzip: 0 });
const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
for (const r of rows) console.log(`  ${r.file.padEnd(40)} ${kb(r.bytes).padStart(10)}  gzip ${kb(r.gzip).padStart(9)}`);
console.log(`bundle: ${kb(total.bytes)} raw, ${kb(total.gzip)} gzip (${rows.length} files)`);
writeFileSync(join(dist, "bundle-size.json"), JSON.stringify({ files: rows, total }, null, 2) + "\n");
