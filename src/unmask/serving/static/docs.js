// Minimal offline API reference: renders /openapi.json (no Swagger UI, no CDN).
"use strict";

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function resolveRef(spec, obj) {
  if (obj && obj.$ref) {
    return obj.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], spec);
  }
  return obj;
}

function table(head, rows) {
  const t = el("table");
  t.append(el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { textContent: h })))));
  const tb = el("tbody");
  for (const r of rows) tb.append(el("tr", {}, ...r.map((c) => el("td", { textContent: c }))));
  t.append(tb);
  return t;
}

async function main() {
  const ops = document.getElementById("ops");
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = `${spec.info.title} API ${spec.info.version}`;
  ops.replaceChildren();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = el("section", { className: "op" });
      box.append(el("h2", {}, el("span", { className: `method ${method}`,
        textContent: method.toUpperCase() }), path));
      if (op.summary) box.append(el("p", { textContent: op.summary }));
      if (op.description) box.append(el("p", { className: "muted", textContent: op.description }));
      const params = (op.parameters || []).map((p) => [p.name, p.in,
        (p.schema && p.schema.type) || "", p.required ? "yes" : "no", p.description || ""]);
      if (params.length) box.append(table(["parameter", "in", "type", "required", "description"], params));
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        const rows = [];
        for (const [ctype, c] of Object.entries(body)) {
          const schema = resolveRef(spec, c.schema) || {};
          for (const [name, prop] of Object.entries(schema.properties || {})) {
            rows.push([ctype, name, prop.format || prop.type || "", prop.description || ""]);
          }
        }
        box.append(table(["body", "field", "type", "description"], rows));
      }
      const resp = Object.entries(op.responses || {}).map(([code, r]) => [code, r.description || ""]);
      box.append(table(["status", "meaning"], resp));
      box.append(el("details", {}, el("summary", { textContent: "raw OpenAPI" }),
        el("pre", { className: "schema", textContent: JSON.stringify(op, null, 2) })));
      ops.append(box);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  main().catch((e) => {
    document.getElementById("ops").textContent = `could not load /openapi.json: ${e.message}`;
  });
});
