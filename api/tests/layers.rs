//! The domain's modules import one another in one direction only: a check
//! over their `use` lines that fails on any circle, so a change cannot grow
//! one back unseen. (Crates cannot form circles; cargo refuses them.)

use std::collections::{BTreeMap, BTreeSet};

/// `super::name` and `crate::domain::name` paths, and the names inside
/// `use super::{…}` and `use crate::domain::{…}` lists, that are modules of the
/// domain.
fn imports(source: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let paths = ["super::", "crate::domain::"]
        .into_iter()
        .flat_map(|prefix| {
            code.match_indices(prefix)
                .map(move |(at, _)| at + prefix.len())
        });
    for start in paths {
        let rest = &code[start..];
        if let Some(list) = rest.strip_prefix('{') {
            // The whole braced list, nested braces included.
            let mut depth = 1;
            let end = list
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(list.len(), |(i, _)| i);
            for word in list[..end].split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if modules.contains(word) {
                    found.insert(word.to_owned());
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&word) {
                found.insert(word);
            }
        }
    }
    found
}

fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_domain_has_no_import_circle() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    // A module is a file, or a folder whose files together are its source.
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    let sources: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            if path.is_dir() {
                let mut files: Vec<_> = std::fs::read_dir(&path).unwrap().flatten().collect();
                files.sort_by_key(|file| file.path());
                let source = files.iter().map(|file| read(&file.path())).collect();
                Some((name, source))
            } else {
                (path.extension()? == "rs" && name != "mod").then(|| (name, read(&path)))
            }
        })
        .collect();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    assert!(
        modules.len() > 10,
        "found the domain's modules: {modules:?}"
    );
    let graph: BTreeMap<String, BTreeSet<String>> = sources
        .iter()
        .map(|(name, source)| {
            let mut uses = imports(source, &modules);
            uses.remove(name);
            (name.clone(), uses)
        })
        .collect();
    assert!(
        graph["bookings"].contains("checkout")
            && graph["holds"].contains("sale")
            && graph["events"].contains("event_updates"),
        "the check sees imports: {graph:?}"
    );
    if let Some(found) = circle(&graph) {
        panic!("an import circle in api/src/domain: {}", found.join(" → "));
    }
    let layer_of = |module: &str| {
        LAYERS
            .iter()
            .position(|(_, modules)| modules.contains(&module))
            .unwrap_or_else(|| panic!("api/src/domain/{module} is in no layer of LAYERS"))
    };
    for (module, uses) in &graph {
        for used in uses {
            assert!(
                layer_of(used) >= layer_of(module),
                "{module} ({}) imports {used} ({}), a layer above it",
                LAYERS[layer_of(module)].0,
                LAYERS[layer_of(used)].0,
            );
        }
    }
}

/// The domain's layers, top to bottom: a module imports from its own layer or
/// those below, never from above (README, "Layout").
const LAYERS: &[(&str, &[&str])] = &[
    (
        "use-cases",
        &[
            "bookings",
            "door",
            "events",
            "holds",
            "payments",
            "promo_codes",
            "report",
            "users",
            "waiting_room",
            "waitlist",
        ],
    ),
    ("checkout", &["checkout"]),
    (
        "sales engine",
        &[
            "admission",
            "box_office",
            "event_cache",
            "promotion",
            "seating",
        ],
    ),
    (
        "words and plumbing",
        &[
            "after_commit",
            "event_updates",
            "idempotency",
            "money",
            "outbox",
            "queries",
            "refunds",
            "sale",
            "ticket_types",
            "validation",
        ],
    ),
];

#[test]
fn the_check_finds_a_circle() {
    let modules: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", "use super::{Error, b::{self, Thing}};"),
        ("b", "fn f() { super::c::g(); }"),
        ("c", "// super::a is only a comment\nuse super::{a, now};"),
    ]
    .into_iter()
    .map(|(name, source)| (name.to_owned(), imports(source, &modules)))
    .collect();
    assert_eq!(
        circle(&graph),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}
