// Checks decode.mjs against the golden vectors in proto/testdata, the same
// files the Go tests check. Run by `make test` with `node --test proto/js/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decode, DecodeError } from "./decode.mjs";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "..", "testdata");

const hex = (path) => Uint8Array.from(Buffer.from(readFileSync(path, "utf8").replace(/\s+/g, ""), "hex"));
const vectors = (dir) => readdirSync(join(testdata, dir)).filter((f) => f.endsWith(".hex")).map((f) => f.slice(0, -4)).sort();

test("there are vectors to check", () => {
  assert.ok(vectors("vectors").length >= 6, "golden vectors missing");
  assert.ok(vectors("decode-only").length >= 5, "decode-only vectors missing");
});

for (const name of vectors("vectors")) {
  test(`vector ${name}`, () => {
    const want = JSON.parse(readFileSync(join(testdata, "vectors", `${name}.json`), "utf8"));
    assert.deepEqual(decode(hex(join(testdata, "vectors", `${name}.hex`))), want);
  });
}

for (const name of vectors("decode-only")) {
  test(`decode-only ${name}`, () => {
    const want = JSON.parse(readFileSync(join(testdata, "decode-only", `${name}.json`), "utf8"));
    const bytes = hex(join(testdata, "decode-only", `${name}.hex`));
    if (want.error === undefined) {
      assert.deepEqual(decode(bytes), want);
      return;
    }
    assert.throws(() => decode(bytes), (err) => {
      assert.ok(err instanceof DecodeError, `not a DecodeError: ${err}`);
      assert.equal(err.code, want.error);
      if (want.len !== undefined) assert.equal(err.len, want.len);
      return true;
    });
  });
}
