// Copy the npm-installed assets the app serves into static/vendor/ (gitignored).
// Run from alerts_web/: `npm ci && npm run vendor` (or `npm ci --prefix alerts_web &&
// npm run vendor --prefix alerts_web` from the repo root). Repeatable: the target is
// wiped and rebuilt from node_modules, which package-lock.json pins.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const target = join(root, "static", "vendor");

const files = {
  "bootstrap/dist/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
  "bootstrap/dist/css/bootstrap.min.css.map": "bootstrap/bootstrap.min.css.map",
  "bootstrap/dist/js/bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
  "bootstrap/dist/js/bootstrap.bundle.min.js.map": "bootstrap/bootstrap.bundle.min.js.map",
  "chart.js/dist/chart.umd.min.js": "chart.js/chart.umd.min.js",
  "swagger-ui-dist/swagger-ui.css": "swagger-ui/swagger-ui.css",
  "swagger-ui-dist/swagger-ui-bundle.js": "swagger-ui/swagger-ui-bundle.js",
  "swagger-ui-dist/swagger-ui-standalone-preset.js": "swagger-ui/swagger-ui-standalone-preset.js",
  "swagger-ui-dist/favicon-32x32.png": "swagger-ui/favicon-32x32.png",
  "swagger-ui-dist/LICENSE": "swagger-ui/LICENSE",
  "bootstrap/LICENSE": "bootstrap/LICENSE",
  "chart.js/LICENSE.md": "chart.js/LICENSE.md",
};

rmSync(target, { recursive: true, force: true });
for (const [from, to] of Object.entries(files)) {
  const src = join(modules, from);
  if (!existsSync(src)) {
    console.error(`missing ${src}: run \`npm ci\` first`);
    process.exit(1);
  }
  const dest = join(target, to);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest);
}
console.log(`copied ${Object.keys(files).length} files into ${target}`);
