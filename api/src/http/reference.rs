//! The API reference page: the OpenAPI document rendered as one static HTML page.

use std::fmt::Write as _;

use serde_json::Value;

use super::problem::ProblemKind;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A schema in one line: `Integration`, `array of Integration`, `string (uuid)`, `string | null`.
fn schema_summary(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(list) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        return list.iter().map(schema_summary).collect::<Vec<_>>().join(" | ");
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => vec!["any".into()],
    };
    let rendered: Vec<String> = types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", schema.get("items").map(schema_summary).unwrap_or_else(|| "any".into())),
            other => {
                let mut s = esc(other);
                if let Some(f) = schema.get("format").and_then(Value::as_str) {
                    let _ = write!(s, " ({})", esc(f));
                }
                if let Some(e) = schema.get("enum").and_then(Value::as_array) {
                    let values: Vec<String> = e.iter().map(|v| esc(&v.to_string())).collect();
                    let _ = write!(s, ": {}", values.join(", "));
                }
                s
            }
        })
        .collect();
    rendered.join(" | ")
}

/// The page's only style, inline (so the page works offline and alone).
const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
     code,pre{font-family:ui-monospace,monospace}h2{border-bottom:1px solid #ddd;margin-top:2em}\
     .op{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}\
     .m{display:inline-block;min-width:4.5em;font-weight:bold}table{border-collapse:collapse}\
     td,th{border:1px solid #e3e3e3;padding:.2em .5em;text-align:left;vertical-align:top}";

/// The page's Content-Security-Policy: nothing but its own inline style (by its hash), no script,
/// no form, never in a frame.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    });
    &POLICY
}

/// Renders the page.
pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    let title = doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API");
    let version = doc.pointer("/info/version").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} — API reference</title>\
         <style>{STYLE}</style></head><body><h1>{t} <small>{v}</small></h1><p>{d}</p><p>The machine-readable document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>",
        t = esc(title),
        v = esc(version),
        d = esc(doc.pointer("/info/description").and_then(Value::as_str).unwrap_or("")),
    );

    let _ = write!(out, "<h2>Operations</h2>");
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                let scopes: Vec<String> = op
                    .get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("bearer").and_then(Value::as_array))
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
                let _ = write!(
                    out,
                    "<div class=\"op\" id=\"{id}\"><span class=\"m\">{m}</span> <code>{p}</code> — {s}<br><small>scope: {scope}</small>",
                    id = esc(op.get("operationId").and_then(Value::as_str).unwrap_or("")),
                    m = method.to_uppercase(),
                    p = esc(path),
                    s = esc(op.get("summary").and_then(Value::as_str).unwrap_or("")),
                    scope = if scopes.is_empty() { "none (public)".to_string() } else { esc(&scopes.join(", ")) },
                );
                if let Some(d) = op.get("description").and_then(Value::as_str) {
                    let _ = write!(out, "<p>{}</p>", esc(d));
                }
                if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                    let _ =
                        write!(out, "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>");
                    for p in params {
                        let _ = write!(
                            out,
                            "<tr><td><code>{n}</code>{r}</td><td>{i}</td><td>{t}</td><td>{d}</td></tr>",
                            n = esc(p.get("name").and_then(Value::as_str).unwrap_or("")),
                            r = if p.get("required").and_then(Value::as_bool) == Some(true) {
                                " (required)"
                            } else {
                                ""
                            },
                            i = esc(p.get("in").and_then(Value::as_str).unwrap_or("")),
                            t = p.get("schema").map(schema_summary).unwrap_or_default(),
                            d = esc(p.get("description").and_then(Value::as_str).unwrap_or("")),
                        );
                    }
                    let _ = write!(out, "</table>");
                }
                if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                    let _ = write!(out, "<p>Body (<code>application/json</code>): {}</p>", schema_summary(body));
                }
                if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                    let _ = write!(out, "<table><tr><th>status</th><th>description</th><th>body</th></tr>");
                    for (status, r) in responses {
                        let body = r
                            .get("content")
                            .and_then(Value::as_object)
                            .and_then(|c| c.values().next())
                            .and_then(|c| c.get("schema"))
                            .map(schema_summary)
                            .unwrap_or_default();
                        let _ = write!(
                            out,
                            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(status),
                            esc(r.get("description").and_then(Value::as_str).unwrap_or("")),
                            body
                        );
                    }
                    let _ = write!(out, "</table>");
                }
                let _ = write!(out, "</div>");
            }
        }
    }

    let _ = write!(out, "<h2>Problem types</h2><table><tr><th>type</th><th>status</th><th>title</th></tr>");
    for kind in ProblemKind::ALL {
        let (_, status, title) = kind.describe();
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&kind.type_uri()),
            status.as_u16(),
            esc(title)
        );
    }
    let _ = write!(out, "</table>");

    let _ = write!(out, "<h2>Schemas</h2>");
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            let _ = write!(out, "<h3 id=\"schema-{0}\">{0}</h3>", esc(name));
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                let _ = write!(out, "<p>{}</p>", esc(d));
            }
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match schema.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    let _ = write!(out, "<table><tr><th>field</th><th>type</th><th>description</th></tr>");
                    for (field, p) in props {
                        let _ = write!(
                            out,
                            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(field),
                            if required.contains(&field.as_str()) { " (required)" } else { "" },
                            schema_summary(p),
                            esc(p.get("description").and_then(Value::as_str).unwrap_or(""))
                        );
                    }
                    let _ = write!(out, "</table>");
                }
                None => {
                    let _ = write!(out, "<p>{}</p>", schema_summary(schema));
                }
            }
        }
    }
    let _ = write!(out, "</body></html>");
    out
}
