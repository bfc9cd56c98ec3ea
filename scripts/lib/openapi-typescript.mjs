// Generates TypeScript types from an OpenAPI document with openapi-typescript, through its
// documented `transform` option: a `format: binary` string is a Blob (a File is one), so that an
// image goes out as a multipart file part. Used by scripts/contract-clients.sh; run it with
// openapi-typescript, openapi-fetch and typescript installed beside it.
//   node openapi-typescript.mjs http://127.0.0.1:8080/openapi.json schema.d.ts
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const [input, output] = process.argv.slice(2);
const source = /^https?:/.test(input) ? new URL(input) : pathToFileURL(input);
const blob = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const ast = await openapiTS(source, {
  transform(schema) {
    if (schema.format === "binary") return blob;
  },
});
writeFileSync(output, astToString(ast));
