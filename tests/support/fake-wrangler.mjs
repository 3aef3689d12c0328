// A stand-in for `wrangler kv key put|get|list` that keeps KV in a
// directory (FAKE_KV_DIR), for testing the portico CLI without workerd.
// Only the flags the CLI uses are understood.

import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const dir = process.env.FAKE_KV_DIR;
if (!dir) {
  console.error("FAKE_KV_DIR is not set");
  process.exit(2);
}
const flag = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
fs.appendFileSync(path.join(dir, "calls.log"), `${args.join(" ")}\n`);
const [kv, key, verb, name] = args;
if (kv !== "kv" || key !== "key") {
  console.error(`unsupported: ${args.join(" ")}`);
  process.exit(2);
}
const store = path.join(dir, flag("--binding") ?? "unbound");
fs.mkdirSync(store, { recursive: true });
const file = (k) => path.join(store, encodeURIComponent(k));

switch (verb) {
  case "put": {
    const value = flag("--path") ? fs.readFileSync(flag("--path"), "utf8") : args[4];
    fs.writeFileSync(file(name), value);
    const metadata = flag("--metadata");
    if (metadata) fs.writeFileSync(`${file(name)}.metadata`, metadata);
    console.log(`Writing the value to key "${name}"`);
    break;
  }
  case "get":
    console.log(fs.existsSync(file(name)) ? fs.readFileSync(file(name), "utf8") : "Value not found");
    break;
  case "list": {
    const prefix = flag("--prefix") ?? "";
    const keys = fs
      .readdirSync(store)
      .filter((f) => !f.endsWith(".metadata"))
      .map(decodeURIComponent)
      .filter((k) => k.startsWith(prefix))
      .sort()
      .map((k) => {
        const meta = `${file(k)}.metadata`;
        return fs.existsSync(meta) ? { name: k, metadata: JSON.parse(fs.readFileSync(meta, "utf8")) } : { name: k };
      });
    console.log(JSON.stringify(keys, null, 2));
    break;
  }
  default:
    console.error(`unsupported verb ${verb}`);
    process.exit(2);
}
