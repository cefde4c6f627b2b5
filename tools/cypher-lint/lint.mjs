// Lint Cypher statements with Neo4j's own language tooling (@neo4j-cypher/language-support):
// the Neo4j 5 grammar plus semantic analysis, offline.
//
// Input (stdin, JSON):
//   { "labels": [...], "relationshipTypes": [...],
//     "files": [{ "path": "metrics/x.cypher", "statements": ["MATCH ..."],
//                 "parameters": ["key"], "gds": false }] }
// Output (stdout, JSON): [{ "path", "statement", "severity", "line", "character", "message" }]
// — one entry per diagnostic (errors and warnings alike); an empty list means clean.
//
// The database schema handed to the linter holds the declared parameters of each file, the mgedb
// labels and relationship types, Neo4j's built-in functions and procedures and, for files under
// cypher/gds/ only, the Graph Data Science procedures and functions. Both catalogues come from the
// package's bundled schema snapshot of a Neo4j 5 server with GDS (`testData.mockSchema`).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { lintCypherQuery, testData } = require('@neo4j-cypher/language-support');

const VERSION = 'CYPHER 5';
const snapshot = testData.mockSchema;
const isGds = (name) => name.startsWith('gds.');
const isBuiltIn = (name) => !isGds(name) && !name.startsWith('apoc.');

function pick(registry, keep) {
  return Object.fromEntries(Object.entries(registry[VERSION]).filter(([name]) => keep(name)));
}

const builtinFunctions = pick(snapshot.functions, (n) => snapshot.functions[VERSION][n].isBuiltIn);
const builtinProcedures = pick(snapshot.procedures, isBuiltIn);
const gdsFunctions = pick(snapshot.functions, isGds);
const gdsProcedures = pick(snapshot.procedures, isGds);

const input = JSON.parse(readFileSync(0, 'utf8'));
const out = [];
for (const file of input.files) {
  const dbSchema = {
    labels: input.labels,
    relationshipTypes: input.relationshipTypes,
    parameters: Object.fromEntries(file.parameters.map((p) => [p, null])),
    functions: { [VERSION]: file.gds ? { ...builtinFunctions, ...gdsFunctions } : builtinFunctions },
    procedures: {
      [VERSION]: file.gds ? { ...builtinProcedures, ...gdsProcedures } : builtinProcedures,
    },
    defaultLanguage: VERSION,
  };
  file.statements.forEach((statement, index) => {
    for (const d of lintCypherQuery(statement, dbSchema)) {
      out.push({
        path: file.path,
        statement: index,
        severity: d.severity === 1 ? 'error' : d.severity === 2 ? 'warning' : 'info',
        line: d.range.start.line + 1,
        character: d.range.start.character + 1,
        message: d.message,
      });
    }
  });
}
process.stdout.write(JSON.stringify(out) + '\n');
