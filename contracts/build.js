#!/usr/bin/env node
// Compiles contracts/src with the pinned solc-js (standard JSON, evmVersion prague) and
// writes one artifact per contract to node/ledger/artifacts/<Name>.json (ABI, bytecode,
// compiler version and settings), which Python loads as package data, so no Python user
// needs Node.
//   node build.js          write the artifacts
//   node build.js --check  recompile and exit 1 if the committed artifacts differ
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const OUT_DIR = path.join(HERE, "..", "node", "ledger", "artifacts");
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function listSources(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return listSources(full);
      return entry.name.endsWith(".sol") ? [full] : [];
    })
    .sort();
}

function findImports(importPath) {
  for (const root of [HERE, path.join(HERE, "node_modules")]) {
    const candidate = path.join(root, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `File not found: ${importPath}` };
}

function compile() {
  const sources = {};
  for (const file of listSources(path.join(HERE, "src"))) {
    sources[path.relative(HERE, file)] = { content: fs.readFileSync(file, "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    for (const e of errors) process.stderr.write(e.formattedMessage + "\n");
    process.exit(1);
  }
  const artifacts = {};
  for (const sourceName of Object.keys(sources)) {
    for (const [contractName, contract] of Object.entries(output.contracts[sourceName])) {
      const artifact = {
        contractName,
        sourceName,
        abi: contract.abi,
        bytecode: "0x" + contract.evm.bytecode.object,
        deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
        compiler: { name: "solc-js", version: solc.version() },
        settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer },
      };
      artifacts[`${contractName}.json`] = JSON.stringify(artifact, null, 2) + "\n";
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  const existing = fs.existsSync(OUT_DIR) ? fs.readdirSync(OUT_DIR).filter((f) => f.endsWith(".json")) : [];
  if (check) {
    const problems = [];
    for (const [name, text] of Object.entries(artifacts)) {
      const file = path.join(OUT_DIR, name);
      if (!fs.existsSync(file)) problems.push(`missing ${name}`);
      else if (fs.readFileSync(file, "utf8") !== text) problems.push(`differs ${name}`);
    }
    for (const name of existing) if (!(name in artifacts)) problems.push(`stale ${name}`);
    if (problems.length) {
      process.stderr.write(`artifacts out of date (run: cd contracts && node build.js): ${problems.join(", ")}\n`);
      process.exit(1);
    }
    process.stdout.write(`artifacts up to date: ${Object.keys(artifacts).length} contracts\n`);
    return;
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const name of existing) if (!(name in artifacts)) fs.unlinkSync(path.join(OUT_DIR, name));
  for (const [name, text] of Object.entries(artifacts)) fs.writeFileSync(path.join(OUT_DIR, name), text);
  process.stdout.write(`wrote ${Object.keys(artifacts).length} artifacts to ${OUT_DIR}\n`);
}

main();
