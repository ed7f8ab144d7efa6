// After `vite build`: copy Swagger UI's files for /docs and pre-compress every text asset
// (gzip and brotli), so that `iiot serve` sends compressed bytes without compressing per request.
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "..", "src", "iiot", "web", "ui");
const swagger = join(here, "..", "node_modules", "swagger-ui-dist");

mkdirSync(join(dist, "assets", "swagger"), { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
  copyFileSync(join(swagger, name), join(dist, "assets", "swagger", name));
}

const compressible = /\.(js|css|html|svg|json|txt|map)$/;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name) && statSync(path).size > 512) {
      const data = readFileSync(path);
      writeFileSync(path + ".gz", gzipSync(data, { level: 9 }));
      writeFileSync(
        path + ".br",
        brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
      );
    }
  }
}
walk(dist);
console.log("postbuild: swagger assets copied, text assets pre-compressed in", dist);
