//! GNU MIG's own C stubs, built at test time and driven through a line protocol.
//!
//! For each ABI, every interface is preprocessed with the sysroot's gnumach headers and run
//! through the real `migcom` (x86_64-gnu-migcom, i686-gnu-migcom); the user and server stubs are
//! compiled with the host gcc (`-m32` for i686) into two programs:
//!
//! - the *user* program links every user stub with `transport.c`, whose `mach_msg` prints the
//!   request it is given (`sent x…`) and answers with a reply the test loaded;
//! - the *server* program links every server demux with generated handlers that print their
//!   parameters and return the results the test scripted.
//!
//! The glue that calls a stub or implements a handler is generated from GNU MIG's own headers
//! (`<iface>.h`, `<iface>_S.h`), so every routine is reachable without a hand-written list.
//! Both programs are compiled with `-ftrivial-auto-var-init=zero`: GNU MIG builds a message in an
//! uninitialised stack buffer, so its padding bytes are whatever the stack held; zeroing them is
//! what makes "whole message, padding included" comparable (the Rust stubs send zero padding).
//!
//! `GNU_MIG_TRACE=1` prints every command to stderr (to replay one by hand).
//!
//! Protocol (one command a line, output lines end with `ok` or `err <why>`; byte strings are
//! `x<hex>`; numbers decimal):
//! - `reply-port N`: the name `mig_get_reply_port` returns.
//! - `reply x…`: the message the next receiving `mach_msg` delivers.
//! - `alloc x…` → `addr N`: a copy of the bytes in the driver's memory (out-of-line data).
//! - `peek ADDR LEN` → `bytes x…`.
//! - `params ROUTINE` → `sizes N[p]…`: the size of each parameter of a user stub (`p`: a pointer).
//! - `call ROUTINE ARG…` → [`sent x…`] `options …` `kr N` `out I x…`…: each ARG is `vx…` (the
//!   parameter's own bytes) or `px…` (a pointer to a buffer holding the bytes; printed back).
//! - `script KR OP…`: what the next handler call does with each of its parameters (`-`, `rN`,
//!   `wx…`, `ax…`, see `driver.c`) and returns.
//! - `demux NAME x…` → [`called H` `arg I x… [x…]`…] `handled 0|1` `reply x…`.

use std::cell::OnceCell;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

pub use mig::Abi;

/// Where each ABI's GNU MIG, headers and C compiler are: the harness's view of an [`Abi`].
trait Toolchain {
    fn sysroot_dir(self) -> &'static str;
    fn multiarch(self) -> &'static str;
    fn migcom(self) -> &'static str;
    /// The folder of `mach_i386.defs` under `mach/`.
    fn machine(self) -> &'static str;
    fn gcc_flags(self) -> &'static [&'static str];
}

impl Toolchain for Abi {
    fn sysroot_dir(self) -> &'static str {
        match self {
            Abi::X86_64 => "amd64",
            Abi::I686 => "i386",
        }
    }
    fn multiarch(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64-linux-gnu",
            Abi::I686 => "i386-linux-gnu",
        }
    }
    fn migcom(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64-gnu-migcom",
            Abi::I686 => "i686-gnu-migcom",
        }
    }
    fn machine(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I686 => "i386",
        }
    }
    fn gcc_flags(self) -> &'static [&'static str] {
        match self {
            Abi::X86_64 => &[],
            Abi::I686 => &["-m32"],
        }
    }
}

// The interfaces under test: `GNUMACH_INTERFACES` and the project's `PROJECT_INTERFACES`,
// preprocessed as `mach/build.rs` does.
include!("../../gnumach_interfaces.rs");
include!("../../project_interfaces.rs");
pub const INTERFACES: &[(&str, &str, &[&str])] = &ALL_INTERFACES;

const ALL_INTERFACES: [(&str, &str, &[&str]); GNUMACH_INTERFACES.len() + PROJECT_INTERFACES.len()] = {
    let mut all = [("", "", &[] as &[&str]); GNUMACH_INTERFACES.len() + PROJECT_INTERFACES.len()];
    let mut i = 0;
    while i < GNUMACH_INTERFACES.len() {
        all[i] = GNUMACH_INTERFACES[i];
        i += 1;
    }
    let mut j = 0;
    while j < PROJECT_INTERFACES.len() {
        all[i + j] = (PROJECT_INTERFACES[j].0, PROJECT_INTERFACES[j].1, &[]);
        j += 1;
    }
    all
};

/// One function prototype from a GNU MIG header: a user stub or a server handler.
#[derive(Clone, Debug)]
pub struct Prototype {
    pub interface: &'static str,
    pub name: String,
    /// `(C type as written, parameter name)`.
    pub params: Vec<(String, String)>,
}

/// Everything built for one ABI.
pub struct Build {
    pub user_stubs: Vec<Prototype>,
    pub handlers: Vec<Prototype>,
    /// `(interface, demux function name)`.
    pub demuxers: Vec<(&'static str, String)>,
    user_program: PathBuf,
    server_program: PathBuf,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("mach lives in the workspace")
        .to_owned()
}

pub fn sysroot() -> PathBuf {
    let root = std::env::var_os("RUMPDISK_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/sysroot"));
    assert!(
        root.join("COMPLETE").exists(),
        "no sysroot at {}: run `cargo xtask setup`",
        root.display()
    );
    root
}

fn sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gnu_mig")
}

/// The build for `abi`, made once per test process (and reused across processes when nothing changed).
pub fn build(abi: Abi) -> &'static Build {
    static BUILDS: [OnceLock<Build>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILDS[abi as usize].get_or_init(|| {
        build_uncached(abi).unwrap_or_else(|e| panic!("GNU MIG C side ({abi:?}): {e}"))
    })
}

/// The ABI's gnumach include directory in the sysroot.
pub fn include_dir(abi: Abi) -> PathBuf {
    sysroot()
        .join(abi.sysroot_dir())
        .join("usr/include")
        .join(abi.multiarch())
}

/// The path of one of [`INTERFACES`]' .defs files for `abi`: gnumach's under the ABI's include
/// directory, the project's in the workspace's `defs/` (the same file for both ABIs).
pub fn defs_path(abi: Abi, defs: &str) -> PathBuf {
    if PROJECT_INTERFACES.iter().any(|&(_, file)| file == defs) {
        workspace_root().join("defs").join(defs)
    } else {
        include_dir(abi).join(defs)
    }
}

fn build_uncached(abi: Abi) -> Result<Build, String> {
    let sysroot = sysroot();
    let include = include_dir(abi);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("gnu_mig")
        .join(abi.machine());
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let mut user_stubs = Vec::new();
    let mut handlers = Vec::new();
    let mut demuxers = Vec::new();
    let mut user_sources = Vec::new();
    let mut server_sources = Vec::new();
    for &(iface, defs, defines) in INTERFACES {
        let defs = defs_path(abi, defs);
        run_gnu_mig(abi, &sysroot, &include, &defs, defines, &out, iface)?;
        let read = |suffix: &str| {
            let path = out.join(format!("{iface}{suffix}"));
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        user_stubs.extend(prototypes(iface, &read(".h")?)?);
        handlers.extend(prototypes(iface, &read("_S.h")?)?);
        demuxers.extend(
            demux_functions(&read("Server.c")?)
                .into_iter()
                .map(|d| (iface, d)),
        );
        user_sources.push(out.join(format!("{iface}User.c")));
        server_sources.push(out.join(format!("{iface}Server.c")));
    }
    std::fs::write(out.join("user_glue.c"), user_glue(&user_stubs)).map_err(|e| e.to_string())?;
    std::fs::write(out.join("server_glue.c"), server_glue(&handlers, &demuxers))
        .map_err(|e| e.to_string())?;
    user_sources.push(out.join("user_glue.c"));
    server_sources.push(out.join("server_glue.c"));

    let user_program = out.join("gnu-mig-user");
    let server_program = out.join("gnu-mig-server");
    let mut jobs = Vec::new();
    for (program, sources) in [
        (&user_program, &user_sources),
        (&server_program, &server_sources),
    ] {
        if let Some(job) = compile(abi, &include, sources, program)? {
            jobs.push(job);
        }
    }
    for (mut child, program, fingerprint) in jobs {
        let (ok, stderr) = child_output(&mut child)?;
        if !ok {
            return Err(format!("gcc failed for {}:\n{stderr}", program.display()));
        }
        std::fs::write(program.with_extension("stamp"), fingerprint).map_err(|e| e.to_string())?;
    }
    Ok(Build {
        user_stubs,
        handlers,
        demuxers,
        user_program,
        server_program,
    })
}

fn child_output(child: &mut Child) -> Result<(bool, String), String> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).map_err(|e| e.to_string())?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status.success(), stderr))
}

/// `cpp` with the ABI's gnumach headers, then `migcom` for user, server and both headers.
fn run_gnu_mig(
    abi: Abi,
    sysroot: &Path,
    include: &Path,
    defs: &Path,
    defines: &[&str],
    out: &Path,
    iface: &str,
) -> Result<(), String> {
    let cpp = Command::new("gcc")
        .args(abi.gcc_flags())
        .args(["-E", "-x", "c"])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(format!("-I{}", include.display()))
        .arg(defs)
        .output()
        .map_err(|e| format!("cannot run gcc -E: {e}"))?;
    if !cpp.status.success() {
        return Err(format!(
            "cpp {}: {}",
            defs.display(),
            String::from_utf8_lossy(&cpp.stderr)
        ));
    }
    let migcom = sysroot.join("bin").join(abi.migcom());
    let mut child = Command::new(&migcom)
        .current_dir(out)
        .args([
            "-user",
            &format!("{iface}User.c"),
            "-server",
            &format!("{iface}Server.c"),
        ])
        .args([
            "-header",
            &format!("{iface}.h"),
            "-sheader",
            &format!("{iface}_S.h"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (run `cargo xtask setup`)",
                migcom.display()
            )
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&cpp.stdout)
        .map_err(|e| e.to_string())?;
    let (ok, stderr) = child_output(&mut child)?;
    if ok {
        Ok(())
    } else {
        Err(format!("{} on {}: {stderr}", abi.migcom(), defs.display()))
    }
}

/// Starts gcc unless the program is already built from identical inputs (hash in a stamp file).
fn compile(
    abi: Abi,
    include: &Path,
    sources: &[PathBuf],
    program: &Path,
) -> Result<Option<(Child, PathBuf, String)>, String> {
    let driver = [
        "driver.c",
        "transport.c",
        "mig_support.c",
        "driver.h",
        "include/mach/mig_support.h",
        "include/project_types.h",
    ]
    .map(|f| sources_dir().join(f));
    let mut hasher = DefaultHasher::new();
    for file in sources.iter().chain(&driver) {
        std::fs::read(file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .hash(&mut hasher);
    }
    include.hash(&mut hasher);
    let stamp = program.with_extension("stamp");
    let fingerprint = format!("{:016x}", hasher.finish());
    if program.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&fingerprint) {
        return Ok(None);
    }
    std::fs::remove_file(&stamp).ok();
    let child = Command::new("gcc")
        .args(abi.gcc_flags())
        .args(["-std=gnu11", "-O1", "-w", "-ftrivial-auto-var-init=zero"])
        .arg(format!("-I{}", sources_dir().join("include").display()))
        .args(["-include", "project_types.h"])
        .arg(format!("-I{}", sources_dir().display()))
        .arg(format!("-I{}", include.display()))
        .arg(format!(
            "-I{}",
            program.parent().expect("in out dir").display()
        ))
        .args(&driver[..3])
        .args(sources)
        .arg("-o")
        .arg(program)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    Ok(Some((child, program.to_owned(), fingerprint)))
}

/// The prototypes of a GNU MIG header: `kern_return_t NAME\n(\n\tTYPE NAME,\n…\n);`.
fn prototypes(interface: &'static str, header: &str) -> Result<Vec<Prototype>, String> {
    let mut found = Vec::new();
    let mut lines = header.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("kern_return_t ") else {
            continue;
        };
        if lines.next() != Some("(") {
            return Err(format!(
                "{interface}: unexpected prototype layout after `{line}`"
            ));
        }
        let mut params = Vec::new();
        for param in lines.by_ref() {
            if param == ");" {
                break;
            }
            let param = param.trim().trim_end_matches(',');
            let split = param
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let (ty, pname) = param.split_at(split);
            if ty.trim().is_empty() || pname.is_empty() {
                return Err(format!(
                    "{interface}: cannot read parameter `{param}` of {name}"
                ));
            }
            params.push((ty.trim().to_owned(), pname.to_owned()));
        }
        found.push(Prototype {
            interface,
            name: name.trim().to_owned(),
            params,
        });
    }
    Ok(found)
}

/// `mig_external boolean_t NAME` lines of a server file: the demux functions.
fn demux_functions(server: &str) -> Vec<String> {
    server
        .lines()
        .filter_map(|l| l.strip_prefix("mig_external boolean_t "))
        .map(|n| n.trim().to_owned())
        .collect()
}

/// The type a parameter of C type `ty` really has (arrays adjust to pointers): a comma
/// expression decays arrays without promoting small integers.
fn param_type(ty: &str) -> String {
    format!("__typeof__(((void)0, ({ty}){{0}}))")
}

fn includes(protos: &[Prototype], suffix: &str) -> String {
    let mut s = String::from("#include \"driver.h\"\n");
    for &(iface, _, _) in INTERFACES {
        if protos.iter().any(|p| p.interface == iface) {
            writeln!(s, "#include \"{iface}{suffix}\"").unwrap();
        }
    }
    s
}

fn user_glue(stubs: &[Prototype]) -> String {
    let mut s = includes(stubs, ".h");
    // GCC's type class of pointers (its typeclass.h).
    s.push_str("#define POINTER_TYPE_CLASS 5\n");
    let mut table = String::new();
    for p in stubs {
        let sizes: Vec<String> = p
            .params
            .iter()
            .map(|(t, _)| format!("sizeof({})", param_type(t)))
            .collect();
        let args: Vec<String> = p
            .params
            .iter()
            .enumerate()
            .map(|(i, (t, _))| format!("*({} *)s[{i}]", param_type(t)))
            .collect();
        let pointers: Vec<String> = p
            .params
            .iter()
            .map(|(t, _)| {
                format!(
                    "__builtin_classify_type(({}){{0}}) == POINTER_TYPE_CLASS",
                    param_type(t)
                )
            })
            .collect();
        writeln!(
            s,
            "static const size_t sizes_{n}[] = {{ {} }};",
            sizes.join(", "),
            n = p.name
        )
        .unwrap();
        writeln!(
            s,
            "static const unsigned char pointers_{n}[] = {{ {} }};",
            pointers.join(", "),
            n = p.name
        )
        .unwrap();
        writeln!(
            s,
            "static kern_return_t call_{n}(void *const *s) {{ return {n}({}); }}",
            args.join(", "),
            n = p.name
        )
        .unwrap();
        writeln!(
            table,
            "\t{{ \"{n}\", {}, sizes_{n}, pointers_{n}, call_{n} }},",
            p.params.len(),
            n = p.name
        )
        .unwrap();
    }
    write!(
        s,
        "const struct user_routine user_routines[] = {{\n{table}}};\n\
         const unsigned user_routine_count = {};\n\
         const struct demuxer demuxers[1];\nconst unsigned demuxer_count = 0;\n",
        stubs.len()
    )
    .unwrap();
    s
}

fn server_glue(handlers: &[Prototype], demuxers: &[(&str, String)]) -> String {
    let mut s = includes(handlers, "_S.h");
    for (_, d) in demuxers {
        writeln!(
            s,
            "boolean_t {d}(mach_msg_header_t *, mach_msg_header_t *);"
        )
        .unwrap();
    }
    for p in handlers {
        let params: Vec<String> = p.params.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let addrs: Vec<String> = p
            .params
            .iter()
            .map(|(_, n)| format!("(void *)&{n}"))
            .collect();
        let sizes: Vec<String> = p
            .params
            .iter()
            .map(|(_, n)| format!("sizeof {n}"))
            .collect();
        writeln!(
            s,
            "kern_return_t {name}({}) {{\n\tvoid *const slots[] = {{ {} }};\n\tconst size_t sizes[] = {{ {} }};\n\
             \treturn handler_run(\"{name}\", {}, slots, sizes);\n}}",
            params.join(", "),
            addrs.join(", "),
            sizes.join(", "),
            p.params.len(),
            name = p.name
        )
        .unwrap();
    }
    let table: String = demuxers
        .iter()
        .map(|(_, d)| format!("\t{{ \"{d}\", {d} }},\n"))
        .collect();
    write!(
        s,
        "const struct demuxer demuxers[] = {{\n{table}}};\nconst unsigned demuxer_count = {};\n\
         const struct user_routine user_routines[1];\nconst unsigned user_routine_count = 0;\n",
        demuxers.len()
    )
    .unwrap();
    s
}

/// A running user or server program (restarted if a command crashed it).
pub struct Driver {
    program: PathBuf,
    child: Child,
    stdin: ChildStdin,
    /// The driver's output lines, read on a thread of their own so that an answer is waited
    /// for [`ANSWER_WAIT`] at most: a driver that hangs fails the test, never hangs it.
    lines: Receiver<std::io::Result<String>>,
}

/// How long one command's answer may take (each takes milliseconds).
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The user program for `abi`, one per test thread (tests run in parallel and must not wait on
/// each other's exchanges).
pub fn user(abi: Abi) -> MutexGuard<'static, Driver> {
    thread_local! {
        static USERS: [OnceCell<&'static Mutex<Driver>>; 2] = const { [OnceCell::new(), OnceCell::new()] };
    }
    let driver = USERS.with(|u| *u[abi as usize].get_or_init(|| leak(&build(abi).user_program)));
    lock(driver)
}

/// The server program for `abi`, one per test thread.
pub fn server(abi: Abi) -> MutexGuard<'static, Driver> {
    thread_local! {
        static SERVERS: [OnceCell<&'static Mutex<Driver>>; 2] = const { [OnceCell::new(), OnceCell::new()] };
    }
    let driver =
        SERVERS.with(|s| *s[abi as usize].get_or_init(|| leak(&build(abi).server_program)));
    lock(driver)
}

/// A driver that lives as long as the test process (it exits when its stdin closes with it).
fn leak(program: &Path) -> &'static Mutex<Driver> {
    Box::leak(Box::new(Mutex::new(Driver::start(program))))
}

fn lock(m: &'static Mutex<Driver>) -> MutexGuard<'static, Driver> {
    // A test that panicked mid-exchange may have left the program dead or out of step: restart it.
    let mut driver = m.lock().unwrap_or_else(|poisoned| {
        let mut driver = poisoned.into_inner();
        driver.child.kill().ok();
        driver
    });
    if !matches!(driver.child.try_wait(), Ok(None)) {
        *driver = Driver::start(&driver.program.clone());
    }
    driver
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(1 + 2 * bytes.len());
    s.push('x');
    for b in bytes {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

pub fn unhex(token: &str) -> Vec<u8> {
    let digits = token
        .strip_prefix('x')
        .unwrap_or_else(|| panic!("not a byte string: {token}"));
    (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A C user-stub argument: the parameter's own bytes, or a pointer to a buffer.
#[derive(Clone, Debug)]
pub enum Arg {
    Value(Vec<u8>),
    Buffer(Vec<u8>),
}

/// What a C user stub did.
#[derive(Debug, Default)]
pub struct Call {
    /// The request it sent (`None` if it returned before sending).
    pub sent: Option<Vec<u8>>,
    pub kr: i32,
    /// The pointer arguments' buffers after the call, by parameter index.
    pub outs: Vec<(usize, Vec<u8>)>,
    pub notes: Vec<String>,
}

/// A handler parameter as recorded: its own bytes, and those it points to (for an `rN` op).
pub type Recorded = (Vec<u8>, Option<Vec<u8>>);

/// What the C server demux did.
#[derive(Debug, Default)]
pub struct Demux {
    /// The handler called, if any, and each of its parameters.
    pub handler: Option<(String, Vec<Recorded>)>,
    pub handled: bool,
    pub reply: Vec<u8>,
}

impl Driver {
    fn start(program: &Path) -> Driver {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Driver {
            program: program.to_owned(),
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command; the lines before `ok`, or the `err` text.
    pub fn command(&mut self, line: &str) -> Result<Vec<String>, String> {
        if std::env::var_os("GNU_MIG_TRACE").is_some() {
            eprintln!("{} <- {line}", self.program.display());
        }
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| self.died(e))?;
        let mut lines = Vec::new();
        loop {
            let l = match self.lines.recv_timeout(ANSWER_WAIT) {
                Ok(line) => line.map_err(|e| self.died(e))?,
                Err(RecvTimeoutError::Disconnected) => return Err(self.died("end of output")),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    return Err(self.died(format!("no answer in {ANSWER_WAIT:?}")));
                }
            };
            let l = l.trim_end().to_owned();
            if l == "ok" {
                return Ok(lines);
            }
            if let Some(e) = l.strip_prefix("err ") {
                return Err(e.to_owned());
            }
            lines.push(l);
        }
    }

    fn died(&mut self, e: impl std::fmt::Display) -> String {
        // Killed first: a driver that closed its output but runs on must not be waited for.
        let _ = self.child.kill();
        format!("GNU MIG driver died ({e}; {:?})", self.child.wait())
    }

    fn must(&mut self, line: &str) -> Vec<String> {
        let short: String = line.chars().take(120).collect();
        self.command(line)
            .unwrap_or_else(|e| panic!("driver command `{short}`: {e}"))
    }

    pub fn set_reply_port(&mut self, port: u32) {
        self.must(&format!("reply-port {port}"));
    }

    /// The reply the next call's receive gets (once; without one the receive times out).
    pub fn load_reply(&mut self, reply: &[u8]) {
        self.must(&format!("reply {}", hex(reply)));
    }

    /// Copies `bytes` into the driver's memory; its address there (for out-of-line fields).
    pub fn alloc(&mut self, bytes: &[u8]) -> u64 {
        let lines = self.must(&format!("alloc {}", hex(bytes)));
        lines[0]
            .strip_prefix("addr ")
            .and_then(|a| a.parse().ok())
            .expect("addr line")
    }

    pub fn peek(&mut self, address: u64, len: usize) -> Vec<u8> {
        let lines = self.must(&format!("peek {address} {len}"));
        unhex(lines[0].strip_prefix("bytes ").expect("bytes line"))
    }

    /// The size of each C parameter of a user stub, and whether it is a pointer.
    pub fn params(&mut self, routine: &str) -> Vec<(usize, bool)> {
        let lines = self.must(&format!("params {routine}"));
        lines[0]
            .split(' ')
            .skip(1)
            .map(|n| {
                (
                    n.trim_end_matches('p').parse().expect("size"),
                    n.ends_with('p'),
                )
            })
            .collect()
    }

    pub fn call(&mut self, routine: &str, args: &[Arg]) -> Call {
        self.try_call(routine, args)
            .unwrap_or_else(|e| panic!("call {routine}: {e}"))
    }

    /// [`Driver::call`], or why the driver failed (e.g. a damaged reply crashed the C stub).
    pub fn try_call(&mut self, routine: &str, args: &[Arg]) -> Result<Call, String> {
        let mut line = format!("call {routine}");
        for a in args {
            match a {
                Arg::Value(v) => write!(line, " v{}", hex(v)),
                Arg::Buffer(b) => write!(line, " p{}", hex(b)),
            }
            .unwrap();
        }
        let mut call = Call::default();
        for l in self.command(&line)? {
            let (key, rest) = l.split_once(' ').unwrap_or((&l, ""));
            match key {
                "sent" => call.sent = Some(unhex(rest)),
                "kr" => call.kr = rest.parse().expect("kr"),
                "out" => {
                    let (i, bytes) = rest.split_once(' ').expect("out line");
                    call.outs.push((i.parse().expect("index"), unhex(bytes)));
                }
                _ => call.notes.push(l.clone()),
            }
        }
        Ok(call)
    }

    /// Arms the next handler call: its return code and one op per parameter.
    pub fn script(&mut self, kr: i32, ops: &[String]) {
        self.must(&format!("script {kr} {}", ops.join(" ")));
    }

    pub fn demux(&mut self, demuxer: &str, request: &[u8]) -> Demux {
        let mut d = Demux::default();
        for l in self.must(&format!("demux {demuxer} {}", hex(request))) {
            let mut words = l.split(' ');
            match words.next() {
                Some("called") => {
                    d.handler = Some((words.next().expect("name").to_owned(), Vec::new()))
                }
                Some("arg") => {
                    let args = &mut d.handler.as_mut().expect("arg after called").1;
                    words.next();
                    let value = unhex(words.next().expect("arg bytes"));
                    args.push((value, words.next().map(unhex)));
                }
                Some("handled") => d.handled = words.next() == Some("1"),
                Some("reply") => d.reply = unhex(words.next().expect("reply bytes")),
                _ => {}
            }
        }
        d
    }
}
