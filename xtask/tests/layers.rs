//! Each crate a stack with one direction: a module uses only the modules below it.
//!
//! The tables below are the layering of each crate, bottom to top, one line of purpose per
//! row; they are the documentation of it too (docs/design.md points here). A row is a module
//! (`hurd::image` names a submodule: it is a row of its own, apart from its parent's); a file
//! belongs to the nearest row above it in the module tree, and uses inside one row are free. The
//! test reads every non-test source file of a crate (from `lib.rs` or `main.rs` along its `mod`
//! declarations; `#[cfg(test)]` items and the files of test modules are left out), collects the
//! `use crate::…`, `super::…` and `crate::x::…` paths, and fails naming the edge when the rows
//! form a circle or a row uses one above it. A use of a row above that cannot be otherwise is an
//! exception, listed with its reason. For crates marked so, no two files may use each other in a
//! circle either, not even a module and its submodule.
//!
//! Run it alone with `cargo test -p xtask --test layers`. Adding a crate is one more entry in
//! `CRATES`: its source folder, its layer table, its exceptions and whether files are checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// A crate's layers, bottom to top: (top-level module, what it is for).
type Layers = &'static [(&'static str, &'static str)];

const MACH: Layers = &[
    ("constants", "gnumach's header constants and C types (bindgen)"),
    ("kern", "`kern_return_t` as `Error`, and the return codes"),
    ("sys", "the traps: the only code that differs by target (inline assembly, glibc, the simulation)"),
    ("sync", "a lock whose waiters give the processor to its holder"),
    ("port", "port names and owned rights (sends released by trap)"),
    ("args", "a task's boot-script words, port names and `KEY=VALUE`s"),
    ("stack", "freestanding thread stacks and the per-thread block (its reply port)"),
    ("reply", "the calling thread's reply port"),
    ("ool", "out-of-line memory, owned until dropped"),
    ("msg", "message buffers, the header, send, receive, RPC, the server loop"),
    ("mig_rt", "what the generated stubs use: byte access, both ABIs' descriptors, MIG's codes"),
    ("interfaces", "the generated kernel, device and Hurd interfaces"),
    ("task", "kernel calls on the task's names: receive rights and port sets released, sets, no-senders"),
    ("vm", "memory only a kernel call gives: physically contiguous, a device's registers"),
    ("wire", "the task and its serving threads wired, out of the pager's way"),
    ("irq", "the kernel's irq device: interrupt lines taken, their notifications awaited and acknowledged"),
    ("times", "the processor time a task's threads used (`task_info`), for benches that measure another task"),
    ("sim", "the simulated GNU Mach of host tests"),
    ("rt", "the freestanding runtime: task start, stack guard pages, allocator, panics"),
    ("thread", "threads of the calling task"),
    ("console", "a `log` backend on the kernel console"),
];

const STORE: Layers = &[
    ("errno", "the Hurd's errno values and the device codes they come from"),
    ("name", "typed store names (`part:2:device:wd0`) parsed"),
    ("runs", "runs of blocks, and the layout that maps a store's addresses onto them"),
    ("error", "the store error: errno, class, device code, failing children, name and partition problems"),
    ("encoding", "the storage-info format: class ids and the four arrays of `file_get_storage_info`"),
    ("store", "the store model: `Store`, the `Class` trait, flags, I/O through runs, `sync`"),
    ("class", "the classes: device, file, memory, zero, remap, concat and ileave, mvol"),
    ("mach_device", "the device class's RPCs over the generated `device` client stubs"),
    ("part", "`part:N:STORE`: the MBR or GPT read and checked, a remap of the partition"),
    ("decode", "a storage-info encoding read back into a store"),
    ("query", "`query:PATH`: libstore's `store_open` of a file system node"),
    ("open", "a typed name opened into a store"),
    ("hurd", "device masters and node storage through the Hurd's glibc and libhurduser (Hurd only)"),
];

const RUMPDISK: Layers = &[
    ("errno", "the Hurd's errno values as they travel in a `RetCode`"),
    ("device", "the device interface's vocabulary: `D_*` codes, open modes, status flavors"),
    ("flush", "the flush merger: `DEV_FLUSH_CACHE` requests gather, one flush answers them"),
    ("hurd_fs", "the Hurd's file-protocol numbers: open modes, lookup retry types"),
    ("backend", "the `Backend`/`Disk` operations, flush modes and the drivers (memory, ATA, rump, kernel)"),
    ("options", "the command line: parsed, and listed back as an argz vector"),
    ("server", "the protocol core: open table, modes, bounds, status flavors, flushes"),
    ("device_server", "device ports over the core: opens, forwarding, no-senders, serving threads"),
    ("settings", "`fsysopts`: the running options and what may change"),
    ("node", "the translator's node as trivfs answers it: node ports, access, stat, syncs"),
    ("translator", "the translator role: `fsys_startup`, the control port, `fsys_goaway`"),
    ("boot", "the boot server role: `fsys_getpriv` to `fsys_init`, `/dev/rumpdisk`, the shutdown notice"),
];

const MIG: Layers = &[
    ("error", "errors: which .defs file, where, what"),
    ("abi", "the two message ABIs (x86_64, i686): header, descriptor and word sizes"),
    ("types", "the MIG type model: what one message item carries"),
    ("lexer", "tokens of the preprocessed MIG language, with their source positions"),
    ("cpp", "the C preprocessor step, as GNU MIG's `mig` runs it"),
    ("parser", "the MIG language into a subsystem, types resolved per ABI"),
    ("layout", "GNU MIG's message layouts per ABI: where every descriptor and datum sits"),
    ("codegen", "Rust for one subsystem and ABI: encoders, decoders, clients, server traits"),
];

/// The harness, in the layers its issue asked for: process and file helpers; QEMU and its disks;
/// images; checkers; scenarios; commands.
const XTASK: Layers = &[
    ("util", "helpers: the error type, the project's root, running cargo and other commands"),
    ("host", "helpers: the sysroot set-up files, the system's Debian mirror, private apt configurations, .deb extraction"),
    ("vm", "QEMU: GNU Mach booted from its ISO: drives (blklogwrites, blkdebug, IDE/AHCI), console, time limit, test lines; the three kernels"),
    ("iso", "images: the GNU Mach boot ISO, GRUB's entry with the boot modules and their words"),
    ("hurd", "images: the Hurd from sources (`cargo xtask hurd`): the cache, the source archives, the stage engine and its table"),
    ("hurd::image", "images: the Hurd's root file system image"),
    ("hurd::partition", "images: the root disk as Debian lays it out: MBR, swap, root"),
    ("hurd::link", "images: the project's programs linked for the Hurd, checked as Hurd ELF files"),
    ("tasks", "images: the freestanding GNU Mach tasks, built per kernel, as boot modules"),
    ("package", "images: the Debian packages built from the Hurd programs and the boot task, and lintian (`cargo xtask package`)"),
    ("barrier", "checkers: the write log, the barrier checker at every crash point, its model, the skipped-flush finder (`check-barrier`)"),
    ("hurd::fscheck", "checkers: the Hurd's crash points checked with e2fsck and the synced files (`check-fs`)"),
    ("hurd::skip_one", "checkers: the Hurd's skipped flush: exactly its rounds lost"),
    ("interrupts", "checkers: whether a console shows the driver completing its commands by interrupt"),
    ("scenario", "scenarios: one scenario, GNU Mach's or the Hurd's: what it boots, what it must print, what the host checks after; its run and result lines"),
    ("hurd::scenarios", "scenarios: the GNU/Hurd scenarios in one table, the Hurd they boot, and `run --hurd`"),
    ("scenarios", "scenarios: the GNU Mach scenarios, `run`, and every scenario by name"),
    ("setup", "commands: `setup`: host packages, rust-src, cargo-fuzz, the sysroot"),
    ("fuzz", "commands: `fuzz`: the fuzz smoke run"),
    ("bench_mig", "commands: `bench mig`: callgrind counts of the generated stubs against GNU MIG's"),
    ("bench", "commands: `bench`: the GNU Mach and Hurd benchmarks and their pages"),
    ("suite", "commands: `test` (every test, step by step) and `vm` (the VM scenarios)"),
];

/// `pattern` is one file: no modules to order.
const PATTERN: Layers = &[];

/// Uses of a module above, each with the reason it cannot be otherwise: (user, used, why).
type Exceptions = &'static [(&'static str, &'static str, &'static str)];

const MACH_EXCEPTIONS: Exceptions = &[(
    "sys",
    "sim",
    "on the host the traps are calls into the simulated kernel, which stands for GNU Mach and is \
     built from the runtime above (generated demuxes, message parsing)",
)];

/// Whether the files of a crate are checked for circles too, beside its rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Files {
    Free,
    NoCircle,
}

/// (crate, its source folder from the workspace root, its layers, its exceptions, its files).
const CRATES: &[(&str, &str, Layers, Exceptions, Files)] = &[
    ("mach", "mach/src", MACH, MACH_EXCEPTIONS, Files::Free),
    ("store", "store/src", STORE, &[], Files::Free),
    ("rumpdisk", "src", RUMPDISK, &[], Files::Free),
    ("mig", "mig/src", MIG, &[], Files::Free),
    ("pattern", "pattern/src", PATTERN, &[], Files::Free),
    ("xtask", "xtask/src", XTASK, &[], Files::NoCircle),
];

#[test]
fn each_crate_is_a_stack_with_one_direction() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut failures = String::new();
    for (name, src, layers, exceptions, files) in CRATES {
        for problem in check_crate(root, &root.join(src), layers, exceptions, *files) {
            writeln!(failures, "{name}: {problem}").unwrap();
        }
    }
    assert!(failures.is_empty(), "module layering:\n{failures}");
}

/// A crate of `files` (path, text) written to a folder of its own for a test of the checker.
fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

/// The checker itself, on a crate written for it: a circle through a grouped `use` and a
/// `super::super::` path, a name the crate root re-exports, comments, strings and a test module
/// left out.
#[test]
fn the_checker_names_circles_and_uses_of_a_module_above() {
    let dir = write_crate("layers-test", &[
        ("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::Top;\n"),
        ("a.rs", "use crate::{b::B, c};\npub fn g() {}\n"),
        ("b.rs", "mod inner;\npub struct B;\nfn top() -> crate::Top { crate::Top }\n"),
        ("b/inner.rs", "// crate::c::Top\nconst S: &str = \"crate::a\";\nfn f() {\n    super::super::a::g();\n}\n"),
        ("c.rs", "pub struct Top;\n#[cfg(test)]\nmod tests {\n    use crate::a::g;\n}\n"),
    ]);
    let problems = check_crate(&dir, &dir, &[("c", ""), ("b", ""), ("a", "")], &[], Files::Free);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        problems,
        [
            "circle `a` → `b` (a.rs:1: crate::b::B), `b` → `a` (b/inner.rs:4: super::super::a::g)",
            "`b` uses `a` (b/inner.rs:4: super::super::a::g), but `a` is above `b` in the layer table",
        ]
    );
}

/// Rows that are submodules, and files in a circle inside one row: a parent and its submodule
/// using each other, and a submodule's row using its parent's row above it.
#[test]
fn the_checker_orders_submodule_rows_and_finds_circles_of_files() {
    let dir = write_crate("layers-files-test", &[
        ("main.rs", "mod p;\n"),
        ("p.rs", "mod q;\nmod r;\nuse self::q::Q;\npub struct P;\n"),
        ("p/q.rs", "pub struct Q;\nfn f() -> super::P {\n    super::P\n}\n"),
        ("p/r.rs", "fn g() -> super::q::Q {\n    super::q::Q\n}\n"),
    ]);
    let rows: Layers = &[("p::r", ""), ("p", "")];
    let free = check_crate(&dir, &dir, rows, &[], Files::Free);
    let no_circle = check_crate(&dir, &dir, rows, &[], Files::NoCircle);
    fs::remove_dir_all(&dir).unwrap();
    let above = "`p::r` uses `p` (p/r.rs:1: super::q::Q), but `p` is above `p::r` in the layer table";
    assert_eq!(free, [above]);
    assert_eq!(
        no_circle,
        ["files in a circle: `p` → `p::q` (p.rs:3: self::q::Q), `p::q` → `p` (p/q.rs:2: super::P)", above]
    );
}

/// The problems of the crate whose `lib.rs` (or `main.rs`) is in `src` against its layer table:
/// circles, uses of a row above, modules in no row or rows that are no module, exceptions for
/// uses that no longer exist, and with [`Files::NoCircle`] files that use each other in a
/// circle. Paths in messages are relative to `root`.
fn check_crate(root: &Path, src: &Path, layers: Layers, exceptions: Exceptions, files: Files) -> Vec<String> {
    let rows: Vec<&str> = layers.iter().map(|(row, _)| *row).collect();
    let Graphs { mut rows_graph, files_graph, modules } = Graphs::read(root, src, &rows);
    let mut problems = Vec::new();
    for (from, to, _) in exceptions {
        if rows_graph.edges.remove(&(from.to_string(), to.to_string())).is_none() {
            problems.push(format!("the exception `{from}` → `{to}` names no use: remove it"));
        }
    }
    let mut circles = rows_graph.circles().into_iter().map(|c| ("circle", c, &rows_graph)).collect::<Vec<_>>();
    if files == Files::NoCircle {
        circles.extend(files_graph.circles().into_iter().map(|c| ("files in a circle:", c, &files_graph)));
    }
    for (what, circle, graph) in circles {
        let mut text = format!("{what} ");
        for pair in circle.windows(2) {
            let at = &graph.edges[&(pair[0].clone(), pair[1].clone())];
            write!(text, "`{}` → `{}` ({at}), ", pair[0], pair[1]).unwrap();
        }
        text.truncate(text.len() - 2);
        problems.push(text);
    }
    let level: BTreeMap<&str, usize> = rows.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    for module in &rows_graph.modules {
        if !level.contains_key(module.as_str()) {
            problems.push(format!("module `{module}` is missing from the layer table"));
        }
    }
    for row in &rows {
        if !modules.contains(*row) {
            problems.push(format!("the layer table names `{row}`, which is no module of the crate"));
        }
    }
    for ((from, to), at) in &rows_graph.edges {
        if to == CRATE_ROOT {
            problems.push(format!("`{from}` uses an item of the crate root ({at}), which is above every module"));
        }
        if let (Some(f), Some(t)) = (level.get(from.as_str()), level.get(to.as_str())) {
            if t > f {
                problems.push(format!(
                    "`{from}` uses `{to}` ({at}), but `{to}` is above `{from}` in the layer table"
                ));
            }
        }
    }
    problems
}

/// What a use of an item of `lib.rs` or `main.rs` itself (not one it re-exports) goes to: the
/// crate root, above every module.
const CRATE_ROOT: &str = "the crate root";

/// Nodes and the uses between them (and of the crate root's items).
struct Graph {
    modules: BTreeSet<String>,
    /// (user, used) → where, the first one found ("file:line: path").
    edges: BTreeMap<(String, String), String>,
}

/// A crate read: the graph of its rows, the graph of its files, and every module it has.
struct Graphs {
    rows_graph: Graph,
    files_graph: Graph,
    modules: BTreeSet<String>,
}

impl Graphs {
    fn read(root: &Path, src: &Path, rows: &[&str]) -> Graphs {
        let main = src.join("main.rs");
        let lib = src.join("lib.rs");
        let lib = Module::parse(if lib.exists() { &lib } else { &main }, &[]);
        let top: BTreeSet<String> = lib.children.iter().map(|c| c.join("::")).collect();
        // Names the crate root re-exports, `#[macro_export]` macros too: `crate::Name` uses
        // the module they come from.
        let mut exported: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in &lib.uses {
            if let (Some(first), Some(last)) = (path.segments.first(), path.segments.last()) {
                if top.contains(first) {
                    exported.insert(last.clone(), path.segments[..path.segments.len() - 1].to_vec());
                }
            }
        }
        let mut files = Vec::new();
        // (folder of the declaring file's children, the module's path below it, its whole path)
        let mut queue: Vec<(PathBuf, Vec<String>, Vec<String>)> =
            lib.children.iter().map(|c| (src.to_path_buf(), c.clone(), c.clone())).collect();
        while let Some((dir, below, path)) = queue.pop() {
            let file = module_file(&dir, &below);
            let module = Module::parse(&file, &path);
            for name in &module.macros {
                exported.insert(name.clone(), path.clone());
            }
            let child_dir = file.parent().unwrap().to_path_buf();
            let stem = file.file_stem().unwrap().to_str().unwrap();
            let child_dir = if stem == "mod" { child_dir } else { child_dir.join(stem) };
            for child in &module.children {
                let full = path.iter().chain(child).cloned().collect();
                queue.push((child_dir.clone(), child.clone(), full));
            }
            files.push((file, module));
        }
        let modules: BTreeSet<String> = files.iter().map(|(_, m)| m.path.join("::")).collect();
        // The longest prefix of `segments` that is in `set`, else its first segment.
        let nearest = |set: &dyn Fn(&str) -> bool, segments: &[String]| {
            (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| set(m))
                .unwrap_or_else(|| segments[0].clone())
        };
        let row_of = |segments: &[String]| nearest(&|m| rows.contains(&m), segments);
        let file_of = |segments: &[String]| nearest(&|m| modules.contains(m), segments);
        let mut rows_graph = Graph { modules: BTreeSet::new(), edges: BTreeMap::new() };
        let mut files_graph = Graph { modules: modules.clone(), edges: BTreeMap::new() };
        for (file, module) in &files {
            let (from_row, from_file) = (row_of(&module.path), module.path.join("::"));
            rows_graph.modules.insert(from_row.clone());
            for path in &module.uses {
                let target = match path.segments.first() {
                    Some(first) if top.contains(first) => Some(path.segments.clone()),
                    Some(first) => exported.get(first).map(|at| at.iter().chain(&path.segments).cloned().collect()),
                    None => continue,
                };
                let (to_row, to_file) = match &target {
                    Some(segments) => (row_of(segments), file_of(segments)),
                    None => (CRATE_ROOT.to_owned(), CRATE_ROOT.to_owned()),
                };
                let rel = file.strip_prefix(root).unwrap_or(file);
                let at = || format!("{}:{}: {}", rel.display(), path.line, path.text);
                if to_row != from_row {
                    rows_graph.edges.entry((from_row.clone(), to_row)).or_insert_with(at);
                }
                if to_file != from_file {
                    files_graph.edges.entry((from_file.clone(), to_file)).or_insert_with(at);
                }
            }
        }
        Graphs { rows_graph, files_graph, modules }
    }
}

impl Graph {
    /// A shortest circle through each module that is on one and not yet shown, as its modules
    /// with the first repeated at the end.
    fn circles(&self) -> Vec<Vec<String>> {
        let mut circles = Vec::new();
        let mut shown = BTreeSet::new();
        for start in &self.modules {
            if shown.contains(start) {
                continue;
            }
            // Breadth first from `start`, each module reached remembering where from.
            let mut from: BTreeMap<&String, &String> = BTreeMap::new();
            let mut frontier = vec![start];
            let mut last = None;
            while last.is_none() && !frontier.is_empty() {
                let mut next = Vec::new();
                for m in frontier {
                    for to in self.uses_of(m) {
                        if to == start {
                            last = last.or(Some(m));
                        } else if !from.contains_key(to) {
                            from.insert(to, m);
                            next.push(to);
                        }
                    }
                }
                frontier = next;
            }
            if let Some(mut m) = last {
                let mut circle = vec![start.clone()];
                while m != start {
                    circle.push(m.clone());
                    shown.insert(m.clone());
                    m = from[m];
                }
                circle.push(start.clone());
                circle.reverse();
                circles.push(circle);
            }
        }
        circles
    }

    /// The modules `module` uses.
    fn uses_of<'a>(&'a self, module: &'a String) -> impl Iterator<Item = &'a String> {
        self.edges.keys().filter(move |(f, _)| f == module).map(|(_, t)| t)
    }
}

/// The file of the module at `below` in `dir`: `dir/…/x.rs` or `dir/…/x/mod.rs`.
fn module_file(dir: &Path, below: &[String]) -> PathBuf {
    let (name, folders) = below.split_last().unwrap();
    let dir = folders.iter().fold(dir.to_path_buf(), |d, f| d.join(f));
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// A path one file names: `crate::…`, `super::…` or `self::…` resolved to the crate root.
struct UsedPath {
    segments: Vec<String>,
    line: usize,
    text: String,
}

/// What one file says about modules.
struct Module {
    path: Vec<String>,
    /// Modules declared with `mod x;` (out of line), as paths below this file's module.
    children: Vec<Vec<String>>,
    uses: Vec<UsedPath>,
    /// `#[macro_export]` macros defined here.
    macros: Vec<String>,
}

impl Module {
    fn parse(file: &Path, path: &[String]) -> Module {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let tokens = without_tests(tokenize(&text));
        let mut module = Module { path: path.to_vec(), children: Vec::new(), uses: Vec::new(), macros: Vec::new() };
        // Inline modules open here: (name, brace depth inside them).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            match t.text.as_str() {
                "{" => depth += 1,
                "}" => {
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                    depth -= 1;
                }
                "mod" if tokens.get(i + 1).is_some_and(|n| n.is_ident()) => {
                    let name = tokens[i + 1].text.clone();
                    match tokens.get(i + 2).map(|n| n.text.as_str()) {
                        Some(";") => {
                            let mut child: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                            child.push(name);
                            module.children.push(child);
                        }
                        Some("{") => {
                            inline.push((name, depth + 1));
                        }
                        _ => {}
                    }
                }
                "macro_exported" => {
                    if let Some(name) = tokens.get(i + 3) {
                        module.macros.push(name.text.clone());
                    }
                }
                "use" if path.is_empty() => {
                    // The crate root's `use`s are relative to it.
                    let (trees, end) = use_tree(&tokens, i + 1);
                    for segments in trees {
                        let text = segments.join("::");
                        module.uses.push(UsedPath { segments, line: t.line, text });
                    }
                    i = end;
                    continue;
                }
                "crate" | "$crate" | "super" | "self" if tokens.get(i + 1).is_some_and(|n| n.text == "::") => {
                    let here: Vec<String> =
                        path.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect();
                    let (trees, end) = use_tree(&tokens, i);
                    for segments in trees {
                        let text = segments.join("::");
                        if let Some(segments) = resolve(&here, &segments) {
                            module.uses.push(UsedPath { segments, line: t.line, text });
                        }
                    }
                    i = end;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        module
    }
}

/// `segments` as a path from the crate root, seen from the module at `here`.
fn resolve(here: &[String], segments: &[String]) -> Option<Vec<String>> {
    let mut base = here.to_vec();
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate" | "$crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().map(String::as_str) == Some("super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// The paths of a use tree (or of a plain path) starting at `tokens[i]`, and the index after it.
fn use_tree(tokens: &[Token], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(i) {
            Some(t) if t.text == "{" => {
                let mut paths = Vec::new();
                i += 1;
                while tokens.get(i).is_some_and(|t| t.text != "}") {
                    let (inner, end) = use_tree(tokens, i);
                    paths.extend(inner.into_iter().map(|p| prefix.iter().cloned().chain(p).collect()));
                    i = end;
                    if tokens.get(i).is_some_and(|t| t.text == ",") {
                        i += 1;
                    }
                }
                return (paths, i + 1);
            }
            Some(t) if t.text == "*" => return (vec![prefix], i + 1),
            Some(t) if t.is_ident() => {
                prefix.push(t.text.clone());
                i += 1;
                if tokens.get(i).is_some_and(|t| t.text == "::") {
                    i += 1;
                    continue;
                }
                if tokens.get(i).is_some_and(|t| t.text == "as") {
                    i += 2;
                }
                return (vec![prefix], i);
            }
            _ => return (vec![prefix], i),
        }
    }
}

struct Token {
    text: String,
    line: usize,
}

impl Token {
    fn is_ident(&self) -> bool {
        self.text.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '$')
    }
}

/// Rust source as identifiers, `::` and single punctuation, without comments and literals.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    // A raw string's opening at `i` (`r"`, `r#"`, `br#"`…): where its text starts, and how many
    // `#` close it.
    let raw_string = |i: usize| {
        let r = match (at(i), at(i + 1)) {
            ('r', _) => i,
            ('b', 'r') => i + 1,
            _ => return None,
        };
        let hashes = (r + 1..).take_while(|&k| at(k) == '#').count();
        (at(r + 1 + hashes) == '"').then_some((r + 2 + hashes, hashes))
    };
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        // Where a comment or literal ends (its newlines counted).
        let mut skip_to = |end: usize, i: &mut usize| {
            line += chars[*i..end.min(chars.len())].iter().filter(|&&c| c == '\n').count();
            *i = end;
        };
        if c == '/' && at(i + 1) == '/' {
            let end = (i..chars.len()).find(|&k| chars[k] == '\n').unwrap_or(chars.len());
            skip_to(end, &mut i);
        } else if c == '/' && at(i + 1) == '*' {
            let (mut end, mut nesting) = (i, 0);
            while end < chars.len() {
                match (at(end), at(end + 1)) {
                    ('/', '*') => (nesting, end) = (nesting + 1, end + 2),
                    ('*', '/') => (nesting, end) = (nesting - 1, end + 2),
                    _ => end += 1,
                }
                if nesting == 0 {
                    break;
                }
            }
            skip_to(end, &mut i);
        } else if let Some((text, hashes)) = raw_string(i) {
            let close = (text..chars.len()).find(|&k| at(k) == '"' && (1..=hashes).all(|h| at(k + h) == '#'));
            skip_to(close.map_or(chars.len(), |k| k + 1 + hashes), &mut i);
        } else if c == '"' || (matches!(c, 'b' | 'c') && at(i + 1) == '"') {
            let mut end = if c == '"' { i + 1 } else { i + 2 };
            while end < chars.len() && at(end) != '"' {
                end += if at(end) == '\\' { 2 } else { 1 };
            }
            skip_to(end + 1, &mut i);
        } else if c == '\'' {
            // A character literal, or a lifetime (left out too: it names no module).
            i += if at(i + 1) == '\\' {
                (i + 2..chars.len()).find(|&k| chars[k] == '\'').map_or(chars.len(), |k| k + 1) - i
            } else if at(i + 2) == '\'' {
                3
            } else {
                1 + (i + 1..).take_while(|&k| at(k).is_alphanumeric() || at(k) == '_').count()
            };
        } else if c.is_alphanumeric() || c == '_' || (c == '$' && at(i + 1).is_alphabetic()) {
            i += 1 + (i + 1..).take_while(|&k| at(k).is_alphanumeric() || at(k) == '_').count();
            tokens.push(Token { text: chars[start..i].iter().collect(), line });
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token { text: "::".into(), line });
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(Token { text: c.to_string(), line });
            }
            line += usize::from(c == '\n');
            i += 1;
        }
    }
    tokens
}

/// The tokens without attributes, and without the items under `#[cfg(test)]` (or a `cfg(all(test,
/// …))`); `#[macro_export]` becomes the marker `macro_exported` before its `macro_rules ! name`.
fn without_tests(tokens: Vec<Token>) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].text == "#" {
            let inner = tokens.get(i + 1).is_some_and(|t| t.text == "!");
            let open = if inner { i + 2 } else { i + 1 };
            if tokens.get(open).is_some_and(|t| t.text == "[") {
                let end = closing(&tokens, open);
                let words: Vec<&str> = tokens[open + 1..end].iter().map(|t| t.text.as_str()).collect();
                let test_only = words.starts_with(&["cfg", "(", "test", ")"])
                    || words.starts_with(&["cfg", "(", "all", "(", "test", ","]);
                i = end + 1;
                if test_only {
                    if inner {
                        return Vec::new();
                    }
                    i = item_end(&tokens, i);
                } else if words == ["macro_export"] {
                    out.push(Token { text: "macro_exported".into(), line: tokens[open].line });
                }
                continue;
            }
        }
        out.push(Token { text: tokens[i].text.clone(), line: tokens[i].line });
        i += 1;
    }
    out
}

/// The index of the bracket closing the one at `open`.
fn closing(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len() - 1
}

/// The index after the item starting at `i` (its further attributes included): after its `;`
/// or its closing brace.
fn item_end(tokens: &[Token], mut i: usize) -> usize {
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            ";" => return i + 1,
            "{" => return closing(tokens, i) + 1,
            "(" | "[" => i = closing(tokens, i) + 1,
            _ => i += 1,
        }
    }
    i
}
