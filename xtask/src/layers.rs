//! xtask's modules bottom to top, and the test that holds the code to that order: a module may use
//! only the modules listed before it, so an import back up a layer fails the test, named; and no
//! files use each other in a circle, not even a module and its submodules. A new module gets a
//! row here, or the test fails.

use std::path::{Path, PathBuf};

/// Every module of xtask by layer, bottom first: (module path, what it does). A submodule without
/// a row of its own belongs to its nearest listed parent; uses inside one row are free.
const LAYERS: &[(&str, &[(&str, &str)])] = &[
    ("process and file helpers", &[
        ("util", "the error type, the project's root, running cargo and other commands"),
        ("host", "the sysroot set-up fills, the system's Debian mirror, private apt configurations, .deb extraction"),
    ]),
    ("QEMU and its disks", &[
        ("vm", "GNU Mach booted from its ISO in QEMU: drives (blklogwrites, blkdebug, IDE/AHCI), console, time limit, test lines; the three kernels"),
    ]),
    ("images", &[
        ("iso", "the GNU Mach boot ISO: GRUB's entry with the boot modules and their words"),
        ("hurd", "the Hurd from sources (`cargo xtask hurd`): the cache, the source archives, the stage engine and its table"),
        ("hurd::image", "the Hurd's root file system image"),
        ("hurd::partition", "the root disk as Debian lays it out: MBR, swap, root"),
        ("hurd::link", "the project's programs linked for the Hurd, checked as Hurd ELF files"),
        ("tasks", "the freestanding GNU Mach tasks, built per kernel, as boot modules"),
        ("package", "the Debian packages built from the Hurd programs and the boot task, and lintian (`cargo xtask package`)"),
    ]),
    ("checkers", &[
        ("barrier", "the write log, the barrier checker at every crash point, its model, the skipped-flush finder (`check-barrier`)"),
        ("hurd::fscheck", "the Hurd's crash points checked with e2fsck and the synced files (`check-fs`)"),
        ("hurd::skip_one", "the Hurd's skipped flush: exactly its rounds lost"),
        ("interrupts", "whether a console shows the driver completing its commands by interrupt"),
    ]),
    ("scenarios", &[
        ("scenario", "one scenario, GNU Mach's or the Hurd's: what it boots, what it must print, what the host checks after; its run and result lines"),
        ("hurd::scenarios", "the GNU/Hurd scenarios in one table, the Hurd they boot, and `run --hurd`"),
        ("scenarios", "the GNU Mach scenarios, `run`, and every scenario by name"),
    ]),
    ("commands", &[
        ("setup", "`setup`: host packages, rust-src, cargo-fuzz, the sysroot"),
        ("fuzz", "`fuzz`: the fuzz smoke run"),
        ("bench_mig", "`bench mig`: callgrind counts of the generated stubs against GNU MIG's"),
        ("bench", "`bench`: the GNU Mach and Hurd benchmarks and their pages"),
        ("suite", "`test` (every test, step by step) and `vm` (the VM scenarios)"),
        ("main", "parses the command line and dispatches"),
        ("layers", "this table, and the test that holds the code to it"),
    ]),
];

/// The rows bottom first: (module, its layer).
fn rows() -> Vec<(&'static str, &'static str)> {
    LAYERS
        .iter()
        .flat_map(|(layer, modules)| modules.iter().map(move |(module, _)| (*module, *layer)))
        .collect()
}

/// A source file's module path (`main` for the crate root) from its path under `src/`.
fn module_of(file: &Path) -> String {
    let mut parts: Vec<String> = file
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The row of `module`: itself or its nearest listed parent (`main` is the root alone).
fn row(rows: &[(&str, &str)], module: &str) -> Option<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, (m, _))| {
            module == *m || (*m != "main" && module.starts_with(&format!("{m}::")))
        })
        .max_by_key(|(_, (m, _))| m.len())
        .map(|(i, _)| i)
}

/// `use a::{b, c::{d, self}}` as the paths it names.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        let path = format!("{prefix}{path}");
        out.push(path.trim_end_matches("::self").trim_end_matches("::*").to_owned());
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[from..i], &head, out);
                from = i + 1;
            }
            _ => {}
        }
    }
    if !inner[from..].trim().is_empty() {
        expand(&inner[from..], &head, out);
    }
}

/// Every path of the form `a::b` in `code` (outside `use` lines), first segment first.
fn paths(code: &str, out: &mut Vec<String>) {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !ident(bytes[i]) || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        loop {
            while end < bytes.len() && ident(bytes[end]) {
                end += 1;
            }
            if code[end..].starts_with("::") && bytes.get(end + 2).is_some_and(|&b| ident(b)) {
                end += 2;
            } else {
                break;
            }
        }
        if code[start..end].contains("::") {
            out.push(code[start..end].to_owned());
        }
        i = end.max(i + 1);
    }
}

/// The module a path names, seen from `module` (`inner`: from its inline `mod tests`), if it
/// is one of xtask's.
fn target(path: &str, module: &str, inner: bool, known: &[String]) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if module == "main" { vec![] } else { module.split("::").collect() };
    match segments[0] {
        "crate" => {
            base.clear();
            segments.remove(0);
        }
        "super" | "self" => {
            if inner && segments[0] == "super" {
                segments.remove(0);
            }
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
            if segments.first() == Some(&"self") {
                segments.remove(0);
            }
        }
        _ => {}
    }
    // What no module's path begins is the crate root's own (`crate::Error` once was).
    let from_root = base.is_empty();
    let full: Vec<&str> = base.iter().chain(&segments).copied().collect();
    (1..=full.len())
        .rev()
        .map(|n| full[..n].join("::"))
        .find(|m| known.contains(m))
        .or_else(|| from_root.then(|| "main".to_owned()))
}

/// A circle in `edges` (a module, a module it uses), as the modules along it.
fn circle(edges: &[(String, String)]) -> Option<Vec<String>> {
    fn visit<'a>(
        at: &'a str,
        edges: &'a [(String, String)],
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == at) {
            return Some(path[start..].iter().chain([&at]).map(|m| m.to_string()).collect());
        }
        if done.contains(&at) {
            return None;
        }
        path.push(at);
        for (_, to) in edges.iter().filter(|(from, _)| from == at) {
            if let Some(found) = visit(to, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(at);
        None
    }
    let mut done = Vec::new();
    edges.iter().find_map(|(from, _)| visit(from, edges, &mut Vec::new(), &mut done))
}

#[test]
fn modules_use_only_the_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    files(&src, &mut sources);
    let known: Vec<String> = sources
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    let rows = rows();
    let mut wrong = Vec::new();
    let mut edges = Vec::new();
    for (listed, _) in &rows {
        if !known.iter().any(|k| k == listed) {
            wrong.push(format!("the table lists `{listed}`, which is no module"));
        }
    }
    for (file, module) in sources.iter().zip(&known) {
        let Some(from) = row(&rows, module) else {
            wrong.push(format!("module `{module}` is in no row of the table"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let mut inner = false;
        let mut statement = String::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            inner |= code.starts_with("mod tests") || code.starts_with("pub mod tests");
            let mut found = Vec::new();
            let trimmed = code.trim_start();
            let is_use = trimmed.starts_with("use ") || (trimmed.starts_with("pub") && trimmed.contains(" use "));
            if !statement.is_empty() || is_use {
                statement += code;
                if !code.contains(';') {
                    continue;
                }
                let tree = statement.split_once("use ").map_or("", |(_, tree)| tree);
                expand(tree.trim().trim_end_matches(';'), "", &mut found);
                statement.clear();
            } else {
                paths(code, &mut found);
            }
            for path in found {
                let Some(to) = target(&path, module, inner, &known) else { continue };
                if to != *module && !edges.contains(&(module.clone(), to.clone())) {
                    edges.push((module.clone(), to.clone()));
                }
                let Some(to_row) = row(&rows, &to) else { continue };
                if to_row > from {
                    wrong.push(format!(
                        "`{module}` ({}) uses `{path}`: `{}` ({}) is above it",
                        rows[from].1, rows[to_row].0, rows[to_row].1
                    ));
                }
            }
        }
    }
    if let Some(files) = circle(&edges) {
        wrong.push(format!("files that use each other in a circle: {}", files.join(" → ")));
    }
    assert!(wrong.is_empty(), "imports back up the layers, or around a circle:\n  {}", wrong.join("\n  "));
}
