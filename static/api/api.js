// Renders /openapi.json as a readable reference. Plain DOM building with
// text nodes only (never parsed HTML, no inline styles), so it runs under the
// service's Content-Security-Policy.
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "delete", "patch"];

  function el(tag, className, children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // Descriptions use `code` spans; everything else is plain text.
  function prose(text, tag) {
    const node = el(tag || "p");
    String(text || "").split("`").forEach((part, i) => {
      node.append(i % 2 ? el("code", null, part) : document.createTextNode(part));
    });
    return node;
  }

  function slug(text) {
    return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  }

  function makeResolver(doc) {
    const schemas = (doc.components && doc.components.schemas) || {};
    return function resolve(schema) {
      let seen = 0;
      while (schema && schema.$ref && seen++ < 20) {
        schema = schemas[schema.$ref.split("/").pop()] || {};
      }
      return schema || {};
    };
  }

  function typeName(schema, resolve) {
    if (schema.$ref) return schema.$ref.split("/").pop();
    const s = resolve(schema);
    if (s.oneOf || s.anyOf) {
      return (s.oneOf || s.anyOf).map((x) => typeName(x, resolve)).join(" | ");
    }
    let type = [].concat(s.type || (s.properties ? "object" : "any"));
    type = type.map((t) => {
      if (t === "array") return "array of " + typeName(s.items || {}, resolve);
      return t;
    });
    let name = type.join(" | ");
    if (s.format) name += " (" + s.format + ")";
    return name;
  }

  function constraints(schema) {
    const parts = [];
    if (schema.minLength !== undefined) parts.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) parts.push("max length " + schema.maxLength);
    if (schema.minimum !== undefined) parts.push("minimum " + schema.minimum);
    if (schema.maximum !== undefined) parts.push("maximum " + schema.maximum);
    if (schema.pattern) parts.push("pattern " + schema.pattern);
    if (schema.enum) parts.push("one of " + schema.enum.join(", "));
    if (schema.example !== undefined) parts.push("example " + JSON.stringify(schema.example));
    return parts.join("; ");
  }

  // A nested list of an object's fields; references are followed a few
  // levels deep so envelopes like {"data": ...} show their content.
  function renderSchema(schema, resolve, depth) {
    const s = resolve(schema);
    const list = el("ul", "api-schema");
    const item = s.type === "array" || (Array.isArray(s.type) && s.type.includes("array")) ? resolve(s.items || {}) : s;
    const properties = item.properties || {};
    const required = new Set(item.required || []);
    const names = Object.keys(properties);
    if (names.length === 0 || depth > 4) {
      list.append(el("li", null, [el("span", "api-type", typeName(schema, resolve)), constraintNote(s)]));
      return list;
    }
    if (item !== s) list.append(el("li", "api-note", "an array of:"));
    for (const name of names) {
      const field = properties[name];
      const resolved = resolve(field);
      const li = el("li", null, [
        el("span", "api-field", name), " ",
        el("span", "api-type", typeName(field, resolve)),
        required.has(name) ? el("span", "api-required", " required") : null,
        resolved.description ? prose(" — " + resolved.description, "span") : null,
        constraintNote(resolved),
      ]);
      const inner = resolved.type === "array" ? resolve(resolved.items || {}) : resolved;
      if (inner.properties) li.append(renderSchema(field, resolve, depth + 1));
      list.append(li);
    }
    if (item.additionalProperties === false) list.append(el("li", "api-note", "no other fields are accepted"));
    return list;
  }

  function constraintNote(schema) {
    const text = constraints(schema);
    return text ? el("span", "api-note", " (" + text + ")") : null;
  }

  function renderContent(content, resolve) {
    const wrap = el("div");
    for (const [mediaType, media] of Object.entries(content || {})) {
      wrap.append(el("div", "api-note", [el("code", null, mediaType)]));
      if (media.schema) wrap.append(renderSchema(media.schema, resolve, 0));
    }
    return wrap;
  }

  function renderOperation(doc, resolve, path, method, op) {
    const secured = (op.security || doc.security || []).length > 0;
    const summaryText = op.summary || "";
    const details = el("details", "api-op");
    details.id = op.operationId || slug(method + " " + path);
    details.append(el("summary", null, [
      el("span", "api-method api-method-" + method, method.toUpperCase()),
      el("span", "api-path", path),
      summaryText ? Object.assign(prose(summaryText, "span"), { className: "api-summary" }) : null,
      secured ? el("span", "api-lock", "requires a token") : null,
    ]));
    const body = el("div", "api-op-body");
    if (op.description && op.description !== summaryText) body.append(prose(op.description));
    if (secured) {
      const schemes = (op.security || []).flatMap((s) => Object.keys(s));
      const defs = (doc.components && doc.components.securitySchemes) || {};
      for (const name of schemes) {
        body.append(prose("Authorization (" + name + "): " + ((defs[name] || {}).description || "")));
      }
    }
    if (op.parameters && op.parameters.length) {
      body.append(el("h4", null, "Parameters"));
      const table = el("table", null, el("tr", null, [el("th", null, "name"), el("th", null, "in"), el("th", null, "type"), el("th", null, "description")]));
      for (const p of op.parameters) {
        const schema = p.schema || {};
        table.append(el("tr", null, [
          el("td", "api-field", p.name + (p.required ? " *" : "")),
          el("td", null, p.in),
          el("td", "api-type", [typeName(schema, resolve), constraintNote(resolve(schema))]),
          el("td", null, prose(p.description || "", "span")),
        ]));
      }
      body.append(table);
    }
    if (op.requestBody) {
      body.append(el("h4", null, "Request body" + (op.requestBody.required ? " (required)" : "")));
      if (op.requestBody.description) body.append(prose(op.requestBody.description));
      body.append(renderContent(op.requestBody.content, resolve));
    }
    body.append(el("h4", null, "Responses"));
    const table = el("table");
    for (const [status, response] of Object.entries(op.responses || {})) {
      const headers = Object.entries(response.headers || {}).map(([name, h]) =>
        el("div", "api-note", [el("code", null, name), prose(" " + (h.description || ""), "span")]));
      table.append(el("tr", null, [
        el("td", "api-status api-status-" + status[0], status),
        el("td", null, [prose(response.description || "", "div"), ...headers, renderContent(response.content, resolve)]),
      ]));
    }
    body.append(table);
    details.append(body);
    return details;
  }

  function render(doc) {
    const resolve = makeResolver(doc);
    const info = doc.info || {};
    document.getElementById("api-title").textContent = (info.title || "API") + " API " + (info.version || "");
    document.title = (info.title || "API") + " API";
    const intro = document.getElementById("api-intro");
    intro.className = "api-intro";
    intro.append(prose(info.description || ""));

    const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const tag = (item[method].tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push([path, method, item[method]]);
      }
    }

    const toc = document.getElementById("api-toc");
    const operations = document.getElementById("api-operations");
    operations.replaceChildren();
    for (const { tag, ops } of byTag.values()) {
      if (ops.length === 0) continue;
      const tocList = el("ul");
      toc.append(el("div", "api-toc-group", [el("strong", null, tag.name), tocList]));
      const section = el("section");
      section.append(el("h2", "api-tag", tag.name));
      section.id = "tag-" + slug(tag.name);
      if (tag.description) section.append(prose(tag.description, "p"));
      for (const [path, method, op] of ops) {
        const node = renderOperation(doc, resolve, path, method, op);
        const link = el("a", null, method.toUpperCase() + " " + path);
        link.href = "#" + node.id;
        link.addEventListener("click", () => { node.open = true; });
        tocList.append(el("li", null, link));
        section.append(node);
      }
      operations.append(section);
    }
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  document.addEventListener("DOMContentLoaded", () => {
    fetch("/openapi.json", { headers: { Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new Error("GET /openapi.json answered " + response.status);
        return response.json();
      })
      .then(render)
      .catch((error) => {
        const operations = document.getElementById("api-operations");
        operations.replaceChildren(el("p", "api-error", "Cannot show the API description: " + error.message));
      });
  });
})();
