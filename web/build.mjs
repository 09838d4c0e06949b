// Builds web/dist: the widget (one script and its stylesheet), the demo page, the dashboard for
// human agents, and livekit-client as one script for the browser tests. `npm run build`.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist/widget", { recursive: true });
mkdirSync("dist/demo", { recursive: true });
mkdirSync("dist/dashboard", { recursive: true });

const common = { bundle: true, format: "iife", target: "es2020", logLevel: "warning" };

await Promise.all([
  build({ ...common, entryPoints: ["src/livekit.js"], globalName: "LivekitClient",
          outfile: "dist/livekit.js" }),
  build({ ...common, entryPoints: ["src/widget/index.ts"], outfile: "dist/widget/widget.js",
          minify: true, sourcemap: "linked", legalComments: "linked" }),
  build({ ...common, entryPoints: ["src/demo/demo.ts"], outfile: "dist/demo/demo.js",
          minify: true }),
  build({ ...common, entryPoints: ["src/dashboard/main.ts"],
          outfile: "dist/dashboard/dashboard.js", minify: true, sourcemap: "linked",
          legalComments: "linked" }),
]);
cpSync("src/widget/widget.css", "dist/widget/widget.css");
cpSync("src/demo/index.html", "dist/demo/index.html");
cpSync("src/demo/demo.css", "dist/demo/demo.css");
cpSync("src/dashboard/index.html", "dist/dashboard/index.html");
cpSync("src/dashboard/dashboard.css", "dist/dashboard/dashboard.css");
