// Fails when the example leans on a cast instead of the generated types: `x as T`, `<T>x`, `x!`, `any`, `@ts-…`.
// Read with the TypeScript compiler itself, so strings and comments that merely contain " as " do not count.
import { readFileSync } from "node:fs";
import ts from "typescript";

const file = process.argv[2] ?? "src/example.ts";
const text = readFileSync(file, "utf8");
const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
const found = [];

function visit(node) {
  const kind =
    ts.isAsExpression(node) ? "an `as` cast"
    : ts.isTypeAssertionExpression(node) ? "a <T> cast"
    : ts.isNonNullExpression(node) ? "a non-null assertion (!)"
    : node.kind === ts.SyntaxKind.AnyKeyword ? "the any type"
    : undefined;
  if (kind) {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart());
    found.push(`${file}:${line + 1}: ${kind}: ${node.getText()}`);
  }
  ts.forEachChild(node, visit);
}

visit(source);
for (const match of text.matchAll(/@ts-(ignore|expect-error|nocheck)/g)) {
  found.push(`${file}: a @ts-${match[1]} comment`);
}

if (found.length > 0) {
  console.error(found.join("\n"));
  process.exit(1);
}
console.log(`${file}: no casts, non-null assertions, any or @ts- comments`);
