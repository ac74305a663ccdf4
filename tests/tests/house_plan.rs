//! The house plan of issue 13, checked over the production sources (no database): each table
//! is named in SQL by exactly one production file, its owner; and code matches on the store
//! (`Store::Postgres` / `Store::Sqlite`, `StoreKind::…`) only in the places that
//! `eventstore-config/src/lib.rs` lists, where the databases really differ.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

/// The crates whose `src/` is production code (`.` is the `eventshop` binary and its CLI).
const PRODUCTION_CRATES: [&str; 11] = [
    ".",
    "domain",
    "eventstore-config",
    "access",
    "application",
    "web",
    "command-api",
    "read-models",
    "projectors",
    "query-api",
    "relay",
];

/// The files that may match on the store: the places listed in eventstore-config's top
/// documentation.
const STORE_BRANCHES_ALLOWED: [&str; 12] = [
    "eventstore-config/src/store.rs",
    "eventstore-config/src/sql.rs",
    "eventstore-config/src/log.rs",
    "eventstore-config/src/log/transfer.rs",
    "eventstore-config/src/followers.rs",
    "eventstore-config/src/notify.rs",
    "eventstore-config/src/command_bus.rs",
    "projectors/src/lease.rs",
    "projectors/src/bulk.rs",
    "projectors/src/rebuild.rs",
    "projectors/src/runner.rs",
    "relay/src/worker.rs",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every production source file (relative path with `/`, its code): unit-test modules
/// (`#[cfg(test)] mod …`, at the end of a file) and comment lines left out.
fn production_sources() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in PRODUCTION_CRATES {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("a readable source file");
            let relative = path
                .strip_prefix(&root)
                .expect("under the workspace")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (relative, code_of(&text))
        })
        .collect()
}

/// `text` up to its unit-test module, without comment lines.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every table the migrations create (both stores).
fn tables() -> BTreeSet<String> {
    let create = Regex::new(r"(?i)create\s+table\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)")
        .expect("a valid pattern");
    let root = workspace_root().join("eventstore-config/migrations");
    let mut tables = BTreeSet::new();
    for store in ["postgres", "sqlite"] {
        for entry in fs::read_dir(root.join(store)).expect("the migrations directory") {
            let sql = fs::read_to_string(entry.expect("a migration").path()).expect("readable");
            tables.extend(create.captures_iter(&sql).map(|c| c[1].to_lowercase()));
        }
    }
    tables
}

/// The module a source file belongs to: `x/src/log.rs`, `x/src/log/mod.rs` and its children
/// `x/src/log/transfer.rs` are all the module `x/src/log` (a module may keep its statements in
/// child modules).
fn module_of(file: &str) -> String {
    let (krate, rest) = file.split_once("/src/").unwrap_or(("", file));
    let top = rest.split('/').next().unwrap_or(rest);
    format!("{krate}/src/{}", top.trim_end_matches(".rs"))
}

/// The modules of `sources` whose code names `table` in SQL (`FROM t`, `INTO t`, `JOIN t`, …).
fn files_naming(sources: &[(String, String)], table: &str) -> Vec<String> {
    let reference = Regex::new(&format!(
        r"(?i)\b(from|into|update|join|table|exists|on)\s+{table}\b"
    ))
    .expect("a valid pattern");
    sources
        .iter()
        .filter(|(_, code)| reference.is_match(code))
        .map(|(file, _)| module_of(file))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

#[test]
fn given_the_migrations_tables_when_the_production_sources_are_read_then_each_table_has_exactly_one_owner_module(
) {
    let sources = production_sources();
    let tables = tables();
    assert!(tables.contains("events") && tables.contains("rm_products"));
    let owners: BTreeMap<&str, Vec<String>> = tables
        .iter()
        .map(|table| (table.as_str(), files_naming(&sources, table)))
        .collect();
    let wrong: Vec<String> = owners
        .iter()
        .filter(|(_, files)| files.len() != 1)
        .map(|(table, files)| format!("{table}: named in {} files {files:?}", files.len()))
        .collect();
    assert!(
        wrong.is_empty(),
        "each table must be named in SQL by exactly one production module (its owner; the \
         others call the owner's functions):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn given_the_production_sources_when_searched_for_store_matches_then_only_the_listed_places_match_on_the_store(
) {
    let branch = Regex::new(r"\bStore(Kind)?::(Postgres|Sqlite)\b").expect("a valid pattern");
    let outside: Vec<String> = production_sources()
        .into_iter()
        .filter(|(file, code)| {
            branch.is_match(code) && !STORE_BRANCHES_ALLOWED.contains(&file.as_str())
        })
        .map(|(file, code)| {
            let lines: Vec<&str> = code
                .lines()
                .filter(|l| branch.is_match(l))
                .map(str::trim)
                .collect();
            format!("{file}: {lines:?}")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "store branches outside the places listed in eventstore-config/src/lib.rs (write the \
         statement once through `Sql`, or list the place there and here):\n{}",
        outside.join("\n")
    );
}

#[test]
fn given_a_module_split_over_child_files_when_grouped_then_the_children_belong_to_the_module() {
    assert_eq!(
        module_of("eventstore-config/src/log.rs"),
        "eventstore-config/src/log"
    );
    assert_eq!(
        module_of("eventstore-config/src/log/transfer.rs"),
        "eventstore-config/src/log"
    );
    assert_eq!(
        module_of("projectors/src/saga/mod.rs"),
        "projectors/src/saga"
    );
    assert_ne!(
        module_of("projectors/src/sql.rs"),
        module_of("projectors/src/saga/run.rs")
    );
}

#[test]
fn given_a_file_with_a_test_module_and_comments_when_reduced_to_code_then_only_production_code_remains(
) {
    let code = code_of(
        "//! SELECT x FROM events\nfn f() {}\n    // from events\n#[cfg(test)]\nmod tests {\n\
         const Q: &str = \"SELECT 1 FROM events\";\n}\n",
    );
    assert_eq!(code, "fn f() {}\n");
}
