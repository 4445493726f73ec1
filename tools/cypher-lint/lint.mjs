#!/usr/bin/env node
// Offline Cypher checker built on Neo4j's own parser and semantic analysis
// (@neo4j-cypher/language-support, pinned in package.json).
//
// stdin : JSON array of Cypher strings, e.g. ["MATCH (n) RETURN n", "MATCH (n RETURN n"]
// stdout: JSON array of the same length and order, one object per input string:
//   {"query": "...",
//    "errors":   [{"message": "...", "line": 1, "column": 10, "severity": 1, "offset": 9}, ...],
//    "warnings": [{"message": "...", "line": 1, "column": 17, "severity": 2, "offset": 16}, ...]}
//
// Severity is the LSP DiagnosticSeverity number the package reports
// (1 = Error, 2 = Warning, 3 = Information, 4 = Hint). Severity 1 (or a missing
// severity) goes to "errors"; everything else, e.g. "The query used a deprecated
// function", goes to "warnings". "line" and "column" are 1-based (the package's
// LSP positions are 0-based); "offset" is the 0-based character offset in the query.
//
// The queries are linted as Neo4j 5 Cypher (the package's default, "CYPHER 5"),
// unless a query starts with an explicit "CYPHER 25" prefix, against an empty
// schema ({}), so labels, properties, functions and procedures are not checked
// against any database. Dropped on purpose:
//   * "Parameter $x is not defined." (the package's isNotParamError filter): we
//     have no parameter values offline.
// Added on top of the package (both are rejected by a real Neo4j server):
//   * an empty / whitespace-only query is an error;
//   * more than one statement in one string is an error (the driver sends one).
// Console commands (":param", ":use", ...) are disabled, so they are errors too.
//
// Exit status: 0 when the queries were linted (whatever the diagnostics), 2 for bad
// input, 1 for an internal failure (message on stderr).
//
// Speed: the semantic analysis is compiled Java and costs ~30-150 ms per query after
// a ~3 s module load, so identical strings are linted once, and large batches are
// spread over worker threads. CYPHER_LINT_JOBS=<n> sets the number of threads
// (1 = lint in this thread only); default: up to 4, one per CPU.

import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const CYPHER_VERSION = 'CYPHER 5';
const DB_SCHEMA = { defaultLanguage: CYPHER_VERSION };
const LINT_OPTIONS = { consoleCommandsEnabled: false };
// Below this many distinct queries, starting extra threads (each loads the
// 5 MB semantic analyser again) costs more than it saves.
const MIN_QUERIES_PER_WORKER = 12;
const MAX_DEFAULT_JOBS = 4;

let languageSupport;

async function loadLanguageSupport() {
  languageSupport ??= await import('@neo4j-cypher/language-support');
  return languageSupport;
}

function toItem(diagnostic) {
  const start = diagnostic.range?.start ?? { line: 0, character: 0 };
  return {
    message: diagnostic.message,
    line: start.line + 1,
    column: start.character + 1,
    severity: diagnostic.severity ?? 1,
    offset: diagnostic.offsets?.start ?? null,
  };
}

function lintOne(ls, query) {
  const errors = [];
  const warnings = [];
  if (query.trim().length === 0) {
    errors.push({ message: 'Query is empty', line: 1, column: 1, severity: 1, offset: 0 });
    return { query, errors, warnings };
  }
  const statements = ls.parseStatementsStrs(query);
  if (statements.length > 1) {
    errors.push({
      message: `Expected exactly one statement per query but got: ${statements.length}`,
      line: 1,
      column: 1,
      severity: 1,
      offset: 0,
    });
  }
  const { diagnostics } = ls.lintCypherQuery(query, DB_SCHEMA, LINT_OPTIONS);
  for (const diagnostic of diagnostics) {
    if (!ls.isNotParamError(diagnostic)) continue;
    const item = toItem(diagnostic);
    (item.severity === 1 ? errors : warnings).push(item);
  }
  return { query, errors, warnings };
}

async function lintAll(queries) {
  const ls = await loadLanguageSupport();
  return queries.map((query) => lintOne(ls, query));
}

function runWorker(queries) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { queries } });
    let result;
    worker.once('message', (message) => {
      result = message;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code === 0 && result) resolve(result);
      else reject(new Error(`lint worker exited with code ${code}`));
    });
  });
}

function jobCount(nQueries) {
  const fromEnv = Number.parseInt(process.env.CYPHER_LINT_JOBS ?? '', 10);
  const wanted =
    Number.isInteger(fromEnv) && fromEnv > 0
      ? fromEnv
      : Math.min(availableParallelism(), MAX_DEFAULT_JOBS);
  return Math.max(1, Math.min(wanted, Math.floor(nQueries / MIN_QUERIES_PER_WORKER)));
}

async function lintDistinct(queries) {
  const jobs = jobCount(queries.length);
  if (jobs === 1) return lintAll(queries);
  // Interleave so that each thread gets a similar mix of short and long queries.
  const slices = Array.from({ length: jobs }, (_, j) => queries.filter((_, i) => i % jobs === j));
  const parts = await Promise.all(slices.map(runWorker));
  const results = new Array(queries.length);
  parts.forEach((part, j) => {
    part.forEach((result, k) => {
      results[k * jobs + j] = result;
    });
  });
  return results;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function fail(code, message) {
  process.stderr.write(`cypher-lint: ${message}\n`);
  process.exitCode = code;
}

async function main() {
  let queries;
  try {
    queries = JSON.parse(await readStdin());
  } catch (err) {
    return fail(2, `stdin is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(queries) || !queries.every((q) => typeof q === 'string')) {
    return fail(2, 'stdin must be a JSON array of strings');
  }
  const distinct = [...new Set(queries)];
  const linted = await lintDistinct(distinct);
  const byQuery = new Map(distinct.map((query, i) => [query, linted[i]]));
  const output = queries.map((query) => byQuery.get(query));
  await new Promise((resolve, reject) => {
    process.stdout.write(`${JSON.stringify(output)}\n`, (err) => (err ? reject(err) : resolve()));
  });
}

if (isMainThread) {
  main().catch((err) => fail(1, err?.stack ?? String(err)));
} else {
  parentPort.postMessage(await lintAll(workerData.queries));
}
