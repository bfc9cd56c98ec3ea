// Verify an identity with a TypeScript client generated from the server's OpenAPI document:
// openapi-typescript types (a binary part is a Blob) and the openapi-fetch client.
//
//   npm install openapi-typescript@7.13.0 openapi-fetch@0.17.0 typescript@5.9.3 tsx@4.23.15
//   node openapi-typescript.mjs http://127.0.0.1:8080/openapi.json schema.d.ts   # scripts/lib/
//   IDVERIFY_URL=http://127.0.0.1:8080 IDVERIFY_API_KEY=idv_... npx tsx verify.ts passport.jpg selfie.jpg photo.jpg
//
// scripts/contract-clients.sh type-checks (tsc --strict) and runs this file against the real server.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";

import createClient from "openapi-fetch";

import type { paths } from "./schema";

const [documentPath, selfiePath, photoPath] = process.argv.slice(2);
const baseUrl = process.env.IDVERIFY_URL!;
const client = createClient<paths>({ baseUrl, headers: { "x-api-key": process.env.IDVERIFY_API_KEY! } });

/** An image file, sent as a binary multipart part. */
async function upload(path: string): Promise<File> {
  return new File([await readFile(path)], basename(path));
}

/** A multipart body: one part per field, files as file parts. */
function formData(body: object): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(body)) {
    if (value instanceof Blob || typeof value === "string") form.append(name, value);
  }
  return form;
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

// 1. Verify, the two images as binary multipart parts read from files.
const multipart = await client.POST("/v1/identity/verify", {
  body: { documentImage: await upload(documentPath), faceImage: await upload(selfiePath), documentType: "auto" },
  bodySerializer: formData,
});
if (!multipart.data) fail(`verify (multipart): ${multipart.response.status} ${JSON.stringify(multipart.error)}`);
const answer = multipart.data;
console.log(
  `verify (multipart): verified=${answer.verified} overall=${answer.overallConfidence} ` +
    `document=${answer.document.documentType} reasons=${answer.reasons.join(",")}`,
);

// 2. The same with the images as base64 in JSON.
const base64 = async (path: string) => (await readFile(path)).toString("base64");
const json = await client.POST("/v1/identity/verify", {
  body: { documentImage: await base64(documentPath), faceImage: await base64(selfiePath) },
});
if (!json.data) fail(`verify (JSON): ${json.response.status} ${JSON.stringify(json.error)}`);
if (json.data.verified !== answer.verified) fail("multipart and JSON disagree");
console.log(`verify (JSON base64): verified=${json.data.verified} overall=${json.data.overallConfidence}`);

// 3. Compare two faces.
const match = await client.POST("/v1/face/compare", {
  body: { sourceImage: await upload(selfiePath), targetImage: await upload(photoPath) },
  bodySerializer: formData,
});
if (!match.data) fail(`compare: ${match.response.status} ${JSON.stringify(match.error)}`);
console.log(`compare: isMatch=${match.data.faceMatch.isMatch} confidence=${match.data.faceMatch.confidence}`);

// 4. Errors are typed: a wrong key is 401 ...
const stranger = createClient<paths>({ baseUrl, headers: { "x-api-key": "idv_not_a_key" } });
const denied = await stranger.POST("/v1/identity/verify", {
  body: { documentImage: await base64(documentPath), faceImage: await base64(selfiePath) },
});
if (denied.response.status !== 401 || denied.error?.error.code !== "unauthorized") fail(`401: ${denied.response.status}`);
console.log(`401: ${denied.error.error.code}`);

// ... and a file that is not an image is 400 with a code from the enum.
const refused = await client.POST("/v1/identity/verify", {
  body: { documentImage: await upload(documentPath), faceImage: new File(["not an image"], "note.txt") },
  bodySerializer: formData,
});
if (refused.response.status !== 400 || refused.error?.error.code !== "unsupported_image_format") {
  fail(`400: ${refused.response.status} ${JSON.stringify(refused.error)}`);
}
console.log(`400: ${refused.error.error.code}: ${refused.error.error.message}`);
