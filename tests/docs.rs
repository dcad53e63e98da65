//! Keeps `docs/` true to the code: event names against the event constants and the
//! AsyncAPI document, environment variables against `.env.example` and what the config
//! reads, REST operations and their answers against the OpenAPI document, and every
//! relative link (file and anchor) inside the docs and the README.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde_json::Value;
use utoipa::OpenApi;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The Markdown files checked: the README and everything in docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `"..."` string literal that follows `marker` on a line of `text`.
fn literals_after(text: &str, marker: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('"').nth(1))
        .map(str::to_string)
        .collect()
}

/// Server → client event names: the `EVENT_*` constants.
fn server_events() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in ["src/domain/events.rs", "src/gateway/expiry.rs"] {
        for line in read(f).lines().filter(|l| l.contains("const EVENT_")) {
            names.extend(line.split('"').nth(1).map(str::to_string));
        }
    }
    assert!(names.len() >= 14, "event constants found: {names:?}");
    names
}

/// Client → server event names: the handlers registered on each socket.
fn client_events() -> BTreeSet<String> {
    let names = literals_after(&read("src/gateway/handlers.rs"), "s.on(");
    assert!(names.len() >= 4, "client events found: {names:?}");
    names
}

/// Backticked words of `text` that look like event names (`chat.message.new`).
fn event_like(text: &str) -> BTreeSet<String> {
    const ROOTS: [&str; 6] = [
        "chat",
        "presence",
        "session",
        "auth",
        "notification",
        "user",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 2
                && ROOTS.contains(&parts[0])
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_event_in_the_code_is_in_events_md_and_nothing_else() {
    let code: BTreeSet<String> = server_events().union(&client_events()).cloned().collect();
    let docs = event_like(&read("docs/events.md"));
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "events missing from docs/events.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/events.md names events the code does not have: {unknown:?}"
    );
}

/// The message names of the AsyncAPI operations with `action`, on the /chat channel.
fn asyncapi_events(doc: &Value, action: &str) -> BTreeSet<String> {
    let resolve = |r: &Value| -> Value {
        let mut v = doc;
        for part in r["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/")
            .split('/')
        {
            v = &v[part];
        }
        if v.get("$ref").is_some() {
            let mut w = doc;
            for part in v["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/")
                .split('/')
            {
                w = &w[part];
            }
            return w.clone();
        }
        v.clone()
    };
    let mut names = BTreeSet::new();
    for op in doc["operations"].as_object().unwrap().values() {
        if op["action"] != action || op["channel"]["$ref"] != "#/channels/chat" {
            continue;
        }
        for m in op["messages"].as_array().unwrap() {
            names.insert(resolve(m)["name"].as_str().unwrap().to_string());
        }
    }
    names
}

#[test]
fn the_asyncapi_document_describes_exactly_the_code_events() {
    let doc: Value = serde_json::from_str(&read("docs/asyncapi.json")).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(
        asyncapi_events(&doc, "send"),
        server_events(),
        "server → client (send)"
    );
    assert_eq!(
        asyncapi_events(&doc, "receive"),
        client_events(),
        "client → server (receive)"
    );
    assert_eq!(
        courier::api::asyncapi::DOCUMENT,
        read("docs/asyncapi.json"),
        "GET /asyncapi.json serves docs/asyncapi.json"
    );
}

/// `NAME_LIKE_THIS` words of `text` (capitals, digits and at least one inner `_`).
fn env_like(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '*'))
        .filter(|w| {
            w.contains('_')
                && !w.starts_with('_')
                && !w.ends_with('_')
                && w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// Names the code reads from the environment: literals of the config and telemetry.
fn env_read_by_code() -> BTreeSet<String> {
    let mut files = vec!["src/config.rs".to_string(), "src/telemetry.rs".to_string()];
    for entry in std::fs::read_dir(root().join("src/config")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rs") {
            files.push(p.strip_prefix(root()).unwrap().display().to_string());
        }
    }
    let mut names: BTreeSet<String> = ["RUST_LOG", "LOG_FORMAT"].map(String::from).into();
    for f in files {
        let text = read(&f);
        for lit in text.split('"').skip(1).step_by(2) {
            names.extend(env_like(lit).into_iter().filter(|n| n == lit));
        }
    }
    names
}

#[test]
fn every_variable_of_env_example_is_documented_and_read() {
    let example: BTreeSet<String> = read(".env.example")
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|n| env_like(n).contains(*n))
        .map(str::to_string)
        .collect();
    assert!(
        example.len() >= 60,
        "variables in .env.example: {example:?}"
    );
    let docs = env_like(&read("docs/configuration.md"));
    let code = env_read_by_code();
    let missing: Vec<_> = example.difference(&docs).collect();
    assert!(
        missing.is_empty(),
        ".env.example variables missing from docs/configuration.md: {missing:?}"
    );
    let unread: Vec<_> = docs.difference(&code).collect();
    assert!(
        unread.is_empty(),
        "docs/configuration.md names variables no code reads: {unread:?}"
    );
    let hidden: Vec<_> = code.difference(&docs).collect();
    assert!(
        hidden.is_empty(),
        "variables read but not in docs/configuration.md: {hidden:?}"
    );
}

/// rest.md's operation sections: "#### `METHOD /path`" → the text up to the next heading.
fn rest_sections() -> BTreeMap<String, String> {
    let text = read("docs/rest.md");
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            sections.extend(current.take());
            if let Some(op) = line
                .strip_prefix("#### `")
                .and_then(|l| l.strip_suffix('`'))
            {
                current = Some((op.to_string(), String::new()));
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections.extend(current);
    sections
}

#[test]
fn every_openapi_operation_and_answer_is_in_rest_md() {
    let doc = serde_json::to_value(courier::api::openapi::ApiDoc::openapi()).unwrap();
    let sections = rest_sections();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            let key = format!("{} {path}", method.to_uppercase());
            let body = sections
                .get(&key)
                .unwrap_or_else(|| panic!("docs/rest.md has no section \"#### `{key}`\""));
            for status in responses.keys() {
                assert!(
                    body.contains(&format!("| {status} |")),
                    "docs/rest.md, {key}: answer {status} is not listed"
                );
            }
            operations.insert(key);
        }
    }
    assert!(operations.len() >= 30, "operations: {operations:?}");
    let stale: Vec<_> = sections
        .keys()
        .filter(|k| !operations.contains(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/rest.md documents operations the API does not have: {stale:?}"
    );
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `](target)` link targets of a Markdown text, outside code fences.
fn links(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for piece in line.split("](").skip(1) {
            if let Some(end) = piece.find(')') {
                out.push(piece[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn relative_links_in_the_docs_resolve() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (target, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let path: PathBuf = if target.is_empty() {
                file.clone()
            } else {
                dir.join(target)
            };
            let name = file.strip_prefix(root()).unwrap().display().to_string();
            if !path.exists() {
                broken.push(format!("{name}: {link} (no such file)"));
            } else if !anchor.is_empty() && path.extension().is_some_and(|e| e == "md") {
                let there = std::fs::read_to_string(&path).unwrap();
                if !anchors(&there).contains(anchor) {
                    broken.push(format!("{name}: {link} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_docs_name_no_machine_paths_or_files_outside_the_repository() {
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // Spelled in parts, so this file does not name the paths it looks for.
        let machine = ["work", "root", "home"].map(|d| format!("/{d}/"));
        let outside = ["shared", "contract.md"].join("/");
        for bad in machine.iter().chain([&outside]) {
            assert!(
                !text.contains(bad.as_str()),
                "{}: mentions {bad}",
                file.display()
            );
        }
    }
    let index = read("docs/README.md");
    for f in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        if name != "README.md" {
            assert!(
                index.contains(&format!("({name}")),
                "docs/README.md does not link {name}"
            );
        }
    }
    assert!(Path::new(&root().join("docs/asyncapi.json")).exists());
}
