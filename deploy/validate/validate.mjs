// Validates Kubernetes manifests offline against the API's OpenAPI schemas (bundled, precompiled,
// by the kubernetes-models package): every document of every file given on the command line must
// be a known apiVersion/kind and pass its schema (types, enums, required fields). Prints one line
// per problem and exits 1 when there is any, 0 otherwise.
//
//   node deploy/validate/validate.mjs deploy/kubernetes/*.yaml
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";

// The kinds deploy/kubernetes uses; anything else is an error, not silently accepted.
const kinds = {
  "apps/v1/Deployment": Deployment,
  "apps/v1/DaemonSet": DaemonSet,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
};

const problems = [];
let checked = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, "utf8"));
  } catch (e) {
    problems.push(`${file}: ${e.message}`);
    continue;
  }
  docs.forEach((doc, i) => {
    const where = `${file}: document ${i + 1}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(`${where}: YAML: ${e.message}`);
      return;
    }
    const data = doc.toJS();
    if (data === null || typeof data !== "object") {
      problems.push(`${where}: expected a Kubernetes object`);
      return;
    }
    const Model = kinds[`${data.apiVersion}/${data.kind}`];
    if (Model === undefined) {
      problems.push(`${where}: unknown apiVersion/kind ${data.apiVersion}/${data.kind}`);
      return;
    }
    try {
      new Model(data).validate();
      checked++;
    } catch (e) {
      problems.push(`${where} (${data.kind} ${data.metadata?.name}): ${e.message}`);
    }
  });
}
for (const p of problems) console.error(p);
if (problems.length === 0 && checked === 0) {
  console.error("no manifest documents given");
  process.exit(1);
}
if (problems.length === 0) console.log(`${checked} documents valid`);
process.exit(problems.length === 0 ? 0 : 1);
