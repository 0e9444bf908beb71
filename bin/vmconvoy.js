#!/usr/bin/env node
// The vmconvoy command: runs the TypeScript sources through tsx (a runtime dependency).
require('tsx/cjs');
const { main } = require('../client/main.ts');
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  () => process.exit(1)
);
