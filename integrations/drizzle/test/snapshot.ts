// Prints drizzle-kit's snapshot of a schema file (default src/schema.ts) as JSON: what push and
// generate compare with the database. tests/test_drizzle.py compares the parts push does not
// compare (CHECK expressions, index predicates and opclasses, policy expressions) itself.
//
//   npx tsx test/snapshot.ts [schema-file]

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

import { generateDrizzleJson } from "drizzle-kit/api";

const file = resolve(process.argv[2] ?? "src/schema.ts");
const imports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
process.stdout.write(`${JSON.stringify(generateDrizzleJson(imports, undefined, ["audit"]))}\n`);
