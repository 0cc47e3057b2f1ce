#!/usr/bin/env node
// Rebuild build/<Contract>.json (ABI + bytecode) from src/*.sol with the pinned `solc`
// npm package. Usage (from this folder): npm ci && npm run build
// The output is committed so tests never need Node; rebuild after changing a source.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

// Cancun is understood by both py-evm (web3[tester]) and anvil; newer opcodes are not needed.
const EVM_VERSION = "cancun";
const SRC = path.join(__dirname, "src");
const OUT = path.join(__dirname, "build");

const sources = {};
for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(SRC, file), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(OUT, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, artifact] of Object.entries(contracts)) {
    const out = {
      contractName: name,
      sourceName: `src/${file}`,
      compiler: `solc ${solc.version()}`,
      evmVersion: EVM_VERSION,
      abi: artifact.abi,
      bytecode: "0x" + artifact.evm.bytecode.object,
    };
    fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(out, null, 2) + "\n");
    console.log(`build/${name}.json`);
  }
}
