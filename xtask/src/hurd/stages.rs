//! The stages of the Hurd build, in order: what each is made from, where it runs and its recipe.
//!
//! Every fix a build stage needs is in its script with the reason beside it. Our changes to the
//! Hurd itself are a patch series (`hurd-patches/`, one file per change, as upstream takes them):
//! `hurd-patched` builds the Hurd again with it applied, and `system-patched` is the system with
//! that Hurd, beside the upstream one, which nothing of the series touches.
//! Scripts see `$TARGET`, `$SYSROOT` (the Hurd system: headers, glibc, the Hurd, userland),
//! `$TOOLS` (the cross GCC), `$ROOT` (the build root on the host), `$MIRROR` (the Debian mirror the
//! host's apt uses) and `$MAKEFLAGS`.

use super::drivers;
use super::engine::{in_root, Place, Stage};
use super::sources::Sources;

/// Inside the build root: the Hurd system as it will be installed on the image.
pub const SYSROOT: &str = "/opt/hurd/sysroot";
/// Inside the build root: the cross compiler.
pub const TOOLS: &str = "/opt/hurd/tools";

/// Debian packages of the build root: the cross binutils and MIG, GNU Mach's headers, and what
/// GCC, glibc and the Hurd need to build. GCC 14 builds with GCC 14: sid's default (16) rejects
/// GCC 14's libcody.
const BUILD_ROOT_PACKAGES: &[&str] = &[
    "binutils-x86-64-gnu",
    "mig-x86-64-gnu",
    "gnumach-dev",
    "gcc-14",
    "g++-14",
    "libgmp-dev",
    "libmpfr-dev",
    "libmpc-dev",
    "flex",
    "bison",
    "gawk",
    "texinfo",
    "autoconf",
    "automake",
    "libtool",
    "pkg-config",
    "python3",
    "xz-utils",
    "bzip2",
    "file",
];

/// Source packages from Debian's archive: (package/suite, the parts taken). glibc's Debian patch
/// tarball is not served here, so glibc is built from its upstream tarball alone.
const TOOLCHAIN_SOURCES: &[(&str, &[&str])] = &[
    ("gcc-14/trixie", &["orig", "debian"]),
    ("glibc/sid", &["orig"]),
    ("dash/sid", &["orig"]),
];

/// Which systems a command boots: the patched Hurd's stages are built only when asked for, so
/// that a change to the patch series rebuilds nothing under the upstream system's users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Systems {
    Upstream,
    UpstreamAndPatched,
}

/// Every stage, in order.
pub fn table(sources: &Sources) -> Vec<Stage> {
    table_for(sources, Systems::UpstreamAndPatched)
}

/// The stages that make `systems`, in order.
pub fn table_for(sources: &Sources, systems: Systems) -> Vec<Stage> {
    let mut table = vec![
        Stage {
            name: "build-root",
            about: "a Debian sid build root (debootstrap)",
            after: &[],
            inputs: Vec::new(),
            place: Place::Host,
            script: r#"
for m in dev/pts dev proc; do
    if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
done
rm -rf "$ROOT"
debootstrap --variant=minbase --include=build-essential sid "$ROOT" "$MIRROR"
"#
            .to_owned(),
        },
        Stage {
            name: "build-tools",
            about: "cross binutils, GNU MIG, GNU Mach headers and build tools from Debian",
            after: &["build-root"],
            inputs: Vec::new(),
            place: Place::BuildRoot,
            script: format!(
                r#"
# sid's Release files are past their Valid-Until date on the mirror; only the build root's apt
# is told to accept them.
echo 'Acquire::Check-Valid-Until "false";' > /etc/apt/apt.conf.d/90build-root
printf 'deb %s sid main\ndeb-src %s sid main\ndeb-src %s trixie main\n' "$MIRROR" "$MIRROR" "$MIRROR" \
    > /etc/apt/sources.list
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}
"#,
                BUILD_ROOT_PACKAGES.join(" ")
            ),
        },
        debian_sources(
            "debian-sources",
            "GCC, glibc and dash sources from Debian's archive",
            "/src/debian",
            TOOLCHAIN_SOURCES,
        ),
        debian_sources(
            "userland-sources",
            "busybox's sources from Debian's archive",
            "/src/userland",
            USERLAND_SOURCES,
        ),
        Stage {
            name: "hurd-source",
            about: "the Hurd's source tree from the local archive",
            after: &["build-root"],
            inputs: vec![sources.hurd.clone()],
            place: Place::Host,
            script: r#"
rm -rf "$ROOT/src/hurd" && mkdir -p "$ROOT/src/hurd"
cp "$HURD_ARCHIVE" "$ROOT/src/hurd/hurd.tar.xz"
"#
            .to_owned(),
        },
        in_root(
            "hurd-tree",
            "the Hurd's tree unpacked and its configure generated",
            &["build-tools", "hurd-source"],
            r#"
rm -rf /build/hurd-src && mkdir -p /build && tar xJf /src/hurd/hurd.tar.xz -C /build
mv /build/hurd /build/hurd-src
# The git tree has no configure.
cd /build/hurd-src && autoreconf -i
"#,
        ),
        in_root(
            "sysroot-headers",
            "GNU Mach's and the Hurd's headers in the sysroot",
            &["hurd-tree"],
            &format!(
                r#"
rm -rf "$SYSROOT" && mkdir -p "$SYSROOT/usr/include"
# gnumach-dev installs the kernel's headers for the Debian (Linux) multiarch triplet.
for d in mach device mach_debug; do cp -a "/usr/include/x86_64-linux-gnu/$d" "$SYSROOT/usr/include/"; done
rm -rf /build/hurd-headers && mkdir /build/hurd-headers && cd /build/hurd-headers
# Before glibc exists only the host compiler can pass configure's checks; headers need no more.
CC=gcc /build/hurd-src/configure --host=$TARGET --prefix=/usr {HURD_WITHOUT}
make DESTDIR="$SYSROOT" prefix=/usr no_deps=t install-headers
"#
            ),
        ),
        in_root(
            "gcc-source",
            "GCC 14's tree unpacked, with Debian's fix for the missing documentation",
            &["debian-sources"],
            r#"
rm -rf /build/gcc-src /build/gcc-orig && mkdir -p /build/gcc-orig && cd /build/gcc-orig
# Debian's orig tarball holds the upstream (dfsg) tarball.
tar xzf /src/debian/gcc-14_*.orig.tar.gz
mkdir upstream && tar xJf gcc-14-*/gcc-*-dfsg.tar.xz -C upstream
mv upstream/gcc-* /build/gcc-src && cd /build && rm -rf gcc-orig
mkdir gcc-debian && tar xJf /src/debian/gcc-14_*.debian.tar.xz -C gcc-debian
# The dfsg tree lacks the GFDL manuals; without this patch genhooks stops ("No place specified
# to document hook").
patch -d /build/gcc-src -p2 < gcc-debian/debian/patches/gcc-gfdl-build.diff
rm -rf gcc-debian
"#,
        ),
        in_root(
            "gcc",
            "the cross GCC, C only: the compiler is built once, before glibc exists",
            &["gcc-source", "sysroot-headers"],
            &format!(
                r#"
rm -rf /build/gcc && mkdir /build/gcc && cd /build/gcc
# Configured as the final compiler (shared libgcc, POSIX threads), so that it is built once:
# libgcc, the one part that needs the C library, is built later in this tree (stages libc-headers
# and libgcc). The glibc version is given because its headers are not in the sysroot yet.
/build/gcc-src/configure {GCC_OPTIONS} --enable-shared --enable-threads=posix --disable-bootstrap \
    --with-glibc-version=2.43
make all-gcc
make install-gcc
"#
            ),
        ),
        in_root(
            "libc-headers",
            "glibc's headers in the sysroot, and the static libgcc that glibc links with",
            &["gcc"],
            &format!(
                r#"
rm -rf /build/glibc-src /build/glibc-headers && mkdir -p /build/glibc-headers
tar xJf /src/debian/glibc_*.orig.tar.xz -C /build && mv /build/glibc-2.* /build/glibc-src
cd /build/glibc-src
# The upstream tarball has no manual/: build no manual, and keep the generated Hurd errno.h
# that the tarball ships instead of making it from manual/errno.texi.
grep -q ' wctype manual po ' Makeconfig
sed -i 's/ wctype manual po / wctype po /' Makeconfig
mkdir -p manual && : > manual/errno.texi && touch -d 2000-01-01 manual/errno.texi
cd /build/glibc-headers
# A configure of its own: the one in stage glibc must see a compiler that has its libgcc.
{GLIBC_CONFIGURE}
make install-headers DESTDIR="$SYSROOT"
grep -q EBUSY "$SYSROOT/usr/include/bits/errno.h"
# install-headers leaves out the stubs list, which only a built glibc can make; stage glibc
# installs the real one over this empty one.
mkdir -p "$SYSROOT/usr/include/gnu" && touch "$SYSROOT/usr/include/gnu/stubs.h"
cd /build && rm -rf /build/glibc-headers
# GCC's own limits.h ends in the C library's only if the sysroot had one when GCC was built; it
# had none then. Make it again as GCC's build would have with glibc's headers present, installed
# and in the build tree (whose compiler builds libgcc).
limits=$($TARGET-gcc -print-file-name=include)/limits.h
test -f "$limits" && test -f /build/gcc/gcc/include/limits.h
cat /build/gcc-src/gcc/limitx.h /build/gcc-src/gcc/glimits.h /build/gcc-src/gcc/limity.h > "$limits"
grep -q 'include_next <limits.h>' "$limits"
cp "$limits" /build/gcc/gcc/include/limits.h
# Static only: the shared libgcc links with libc.so, which stage glibc builds with this one.
# GCC's top-level Makefile passes no command-line variable on (MAKEOVERRIDES is emptied), so the
# setting rides in MAKE, which every sub-make is run as.
cd /build/gcc && rm -rf "$TARGET/libgcc"
make MAKE="make enable_shared=no" all-target-libgcc
make MAKE="make enable_shared=no" install-target-libgcc
# The compiler, made for a shared libgcc, links static programs with libgcc_eh too; a static-only
# libgcc has its unwinder in libgcc.a, so libgcc_eh is that (stage libgcc installs the real one).
cd "$(dirname "$($TARGET-gcc -print-libgcc-file-name)")"
test -f libgcc.a && ln -sf libgcc.a libgcc_eh.a
"#
            ),
        ),
        in_root(
            "glibc",
            "glibc 2.43 for the Hurd",
            &["libc-headers"],
            &format!(
                r#"
rm -rf /build/glibc && mkdir -p /build/glibc && cd /build/glibc
{GLIBC_CONFIGURE}
make
make install DESTDIR="$SYSROOT"
# Had errno.h been made again from the empty errno.texi, it would have no error names.
grep -q EBUSY /build/glibc-src/sysdeps/mach/hurd/bits/errno.h
# Every Hurd program calls RPC stubs that live in libmachuser and libhurduser: link them when
# needed through libc.so, as Debian's libc does; without it linking fails with "undefined
# reference to symbol 'file_exec_paths' ... DSO missing from command line".
grep -q 'AS_NEEDED (' "$SYSROOT/usr/lib/libc.so"
sed -i 's|AS_NEEDED (|AS_NEEDED ( /lib/libmachuser.so.1 /lib/libhurduser.so.0.3|' "$SYSROOT/usr/lib/libc.so"
cat "$SYSROOT/usr/lib/libc.so"
"#
            ),
        ),
        in_root(
            "libgcc",
            "libgcc again, with the shared libgcc_s (Rust's std links it), against glibc",
            &["glibc"],
            r#"
cd /build/gcc
# Built afresh: the static-only build put the unwinder into libgcc.a, which with a shared
# libgcc belongs in libgcc_eh.a.
rm -rf "$TARGET/libgcc"
make all-target-libgcc
rm -f "$(dirname "$($TARGET-gcc -print-libgcc-file-name)")/libgcc_eh.a"
make install-target-libgcc
cp -a "$TOOLS/$TARGET"/lib*/libgcc_s.so* "$SYSROOT/lib/"
"#,
        ),
        in_root(
            "hurd",
            "the Hurd: libraries, servers, boot servers, utilities",
            &["libgcc"],
            &format!(
                r#"
rm -rf /build/hurd && mkdir /build/hurd && cd /build/hurd
export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/pkgconfig:$SYSROOT/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
/build/hurd-src/configure --host=$TARGET --prefix= --disable-profile {HURD_WITHOUT} \
    --enable-static-progs=ext2fs,exec
make
make install DESTDIR="$SYSROOT"
"#
            ),
        ),
        in_root(
            "dash",
            "dash, the shell",
            &["libgcc"],
            r#"
rm -rf /build/dash && mkdir -p /build/dash && tar xzf /src/debian/dash_*.orig.tar.gz -C /build/dash --strip-components=1
cd /build/dash
# The Hurd has no PATH_MAX; dash's code needs a bound.
./configure --host=$TARGET CC=$TARGET-gcc --prefix=/ CFLAGS="-O2 -DPATH_MAX=4096"
make
install -D -m 755 src/dash "$SYSROOT/bin/dash"
ln -sf dash "$SYSROOT/bin/sh"
"#,
        ),
        in_root(
            "busybox",
            "busybox: the commands a shell user and the tests need (ls, cat, dd, sync...)",
            &["hurd", "userland-sources"],
            &format!(
                r#"
rm -rf /build/busybox && mkdir -p /build/busybox && cd /build/busybox
tar xjf /src/userland/busybox_*.orig.tar.bz2 --strip-components=1
tar xJf /src/userland/busybox_*.debian.tar.xz
# Debian's own patches (they make busybox build on non-Linux kernels), then only the applets
# listed below: Debian's full configuration for the Hurd pulls in Linux console tools.
sed -e '/^#/d' -e '/^$/d' debian/patches/series | while read -r patch _; do patch -p1 < "debian/patches/$patch"; done
make allnoconfig > /dev/null
for applet in {applets}; do
    grep -q "^# CONFIG_$applet is not set" .config || {{ echo "error: busybox has no applet $applet"; exit 1; }}
    sed -i "s/^# CONFIG_$applet is not set/CONFIG_$applet=y/" .config
done
# Sub-options of those applets take their defaults (`yes` ends on SIGPIPE: not a failure), but
# for the features named here.
set +o pipefail; yes '' | make oldconfig > /dev/null; set -o pipefail
for feature in {features}; do
    sed -i "s/^# CONFIG_$feature is not set/CONFIG_$feature=y/" .config
    grep -q "^CONFIG_$feature=y" .config || {{ echo "error: busybox has no feature $feature"; exit 1; }}
done
make CROSS_COMPILE=$TARGET- busybox busybox.links
install -D -m 755 busybox "$SYSROOT/bin/busybox"
# Applets as links in /bin, except where the Hurd or dash already has the command.
for applet in $(sed 's|.*/||' busybox.links); do
    found=
    for d in bin sbin usr/bin usr/sbin; do [ -e "$SYSROOT/$d/$applet" ] && found=1; done
    [ -n "$found" ] || ln -s busybox "$SYSROOT/bin/$applet"
done
"#,
                applets = BUSYBOX_APPLETS.join(" "),
                features = BUSYBOX_FEATURES.join(" ")
            ),
        ),
    ];
    table.extend(drivers::stages(&sources.drivers));
    table.push(in_root(
        "system",
        "the system as it runs: programs and shared libraries, without debug information",
        &["hurd-drivers", "dash", "busybox"],
        &format!(
            r#"
rm -rf "{SYSTEM}" && mkdir -p "{SYSTEM}"
cd "$SYSROOT"
# Headers, static archives, documentation and locale data are for building, not running.
for d in {folders}; do
    [ -d "$d" ] && cp -a --parents "$d" "{SYSTEM}/"
done
find "{SYSTEM}" \( -name '*.a' -o -name '*.o' -o -name '*.la' \) -delete
find "{SYSTEM}" -type f | while read -r f; do
    if file -b "$f" | grep -q '^ELF'; then $TARGET-strip --strip-debug "$f"; fi
done
du -sh "{SYSTEM}"
"#,
            folders = RUNTIME_FOLDERS.join(" ")
        ),
    ));
    if systems == Systems::UpstreamAndPatched {
        table.extend(patched(sources));
    }
    table
}

/// The Hurd with our patch series, and the system with it: three stages after `system`.
fn patched(sources: &Sources) -> Vec<Stage> {
    // The names are in the recipes (so the series' order is keyed), the contents in the inputs.
    let names: Vec<String> = sources
        .patches
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let names = names.join(" ");
    vec![
        Stage {
            name: "hurd-patches",
            about: "our patch series to the Hurd (hurd-patches/) into the build root",
            after: &["build-root"],
            inputs: sources.patches.clone(),
            place: Place::Host,
            script: format!(
                r#"
rm -rf "$ROOT/src/hurd-patches" && mkdir -p "$ROOT/src/hurd-patches"
for p in {names}; do cp "$PATCHES_DIR/$p" "$ROOT/src/hurd-patches/"; done
"#
            ),
        },
        in_root(
            "hurd-patched",
            "the Hurd as hurd-drivers builds it, from a copy of the tree with the series applied",
            &["hurd-drivers", "hurd-patches"],
            &format!(
                r#"
rm -rf {PATCHED_SRC} {PATCHED_INSTALL} && cp -a /build/hurd-src {PATCHED_SRC}
# Each patch must apply as a whole: a hunk that does not fails the stage.
for p in {names}; do
    echo "applying $p"
    patch -d {PATCHED_SRC} -p1 --forward --no-backup-if-mismatch < "/src/hurd-patches/$p"
done
{build}"#,
                build = drivers::hurd_with_drivers(PATCHED_SRC, "/build/hurd-patched", PATCHED_INSTALL)
            ),
        ),
        in_root(
            "system-patched",
            "the system with the patched Hurd: the upstream system's files, the patched Hurd's over them",
            &["system", "hurd-patched"],
            &format!(
                r#"
rm -rf "{SYSTEM_PATCHED}" && cp -a "{SYSTEM}" "{SYSTEM_PATCHED}"
cd {PATCHED_INSTALL}
for d in {folders}; do
    [ -d "$d" ] && cp -a --parents "$d" "{SYSTEM_PATCHED}/"
done
find "{SYSTEM_PATCHED}" \( -name '*.a' -o -name '*.o' -o -name '*.la' \) -delete
find "{SYSTEM_PATCHED}" -type f | while read -r f; do
    if file -b "$f" | grep -q '^ELF'; then $TARGET-strip --strip-debug "$f"; fi
done
# The servers the scenarios boot are the patched ones.
for f in hurd/ext2fs.static hurd/storeio lib/libdiskfs.so.0.3; do
    cmp -s "{SYSTEM}/$f" "{SYSTEM_PATCHED}/$f" && {{ echo "error: $f is the upstream one"; exit 1; }}
done
du -sh "{SYSTEM_PATCHED}"
"#,
                folders = RUNTIME_FOLDERS.join(" ")
            ),
        ),
    ]
}

/// Inside the build root: the patched Hurd's tree, and where it is installed.
const PATCHED_SRC: &str = "/build/hurd-patched-src";
const PATCHED_INSTALL: &str = "/build/hurd-patched-install";

/// The busybox applets on the image: what a user at the shell and the scenario scripts use.
const BUSYBOX_APPLETS: &[&str] = &[
    "LS",
    "CAT",
    "CP",
    "MV",
    "RM",
    "LN",
    "MKDIR",
    "RMDIR",
    "TOUCH",
    "CHMOD",
    "DD",
    "SYNC",
    "SLEEP",
    "HEAD",
    "TAIL",
    "WC",
    "GREP",
    "SED",
    "TR",
    "CUT",
    "SORT",
    "UNIQ",
    "TEE",
    "ECHO",
    "PRINTF",
    "TEST",
    "TRUE",
    "FALSE",
    "YES",
    "SEQ",
    "EXPR",
    "BASENAME",
    "DIRNAME",
    "STAT",
    "DU",
    "DF",
    "DATE",
    "UNAME",
    "ID",
    "ENV",
    "KILL",
    "FIND",
    "XARGS",
    "CMP",
    "OD",
    "HEXDUMP",
    "SHA256SUM",
    "MD5SUM",
];

/// Features of those applets that the scenarios use: `stat -f` (file_statfs on a node).
const BUSYBOX_FEATURES: &[&str] = &["FEATURE_STAT_FILESYSTEM"];

/// Inside the build root: the system as it runs (what the root image is made from).
pub const SYSTEM: &str = "/opt/hurd/system";
/// Inside the build root: the same system with the patched Hurd.
pub const SYSTEM_PATCHED: &str = "/opt/hurd/system-patched";

/// The folders of the sysroot a running system needs.
const RUNTIME_FOLDERS: &[&str] = &[
    "lib", "hurd", "bin", "sbin", "libexec", "usr/bin", "usr/sbin", "usr/lib",
];

/// glibc configured in the current folder, as both its stages need it. No C++: configure would
/// take the build root's g++ (it links Linux programs, so it passes the link check), and the C++
/// test programs would then fail to link for the Hurd. The shipped Hurd errno.h is kept: an
/// errnos.d that lists no headers is never remade, and a stamp-errnos newer than it and than the
/// empty errno.texi says errno.h is up to date (made again, it would have no error names).
const GLIBC_CONFIGURE: &str = r#"BUILD_CC=gcc CC=$TARGET-gcc CXX= MIG=$TARGET-mig /build/glibc-src/configure --host=$TARGET --prefix=/usr \
    --with-headers="$SYSROOT/usr/include" --disable-profile --disable-werror libc_cv_slibdir=/lib \
    libc_cv_cxx_link_ok=no
echo 'mach-errnos-deps := ' > errnos.d && touch -d 2000-01-02 errnos.d && touch stamp-errnos
grep -q EBUSY /build/glibc-src/sysdeps/mach/hurd/bits/errno.h"#;

/// The cross GCC's options: the target, where the sysroot and Debian's cross binutils are, and
/// C only. GCC 14 is built with GCC 14 (sid's default g++ rejects GCC 14's libcody).
const GCC_OPTIONS: &str = "CC=gcc-14 CXX=g++-14 --target=$TARGET --prefix=$TOOLS --with-sysroot=$SYSROOT \
    --with-native-system-header-dir=/usr/include --with-as=/usr/bin/$TARGET-as --with-ld=/usr/bin/$TARGET-ld \
    --enable-languages=c --disable-multilib --disable-nls --disable-libssp --disable-libquadmath \
    --disable-libgomp --disable-libatomic --disable-libsanitizer --disable-libvtv --disable-libstdcxx";

/// The Hurd's optional dependencies left out: none of them is built here, and none is needed to
/// boot from a disk served by rumpdisk-rs: `part:` stores (libparted), bzip2/gzip stores,
/// crypt(3) for login, the rump drivers (librump: not reachable here; our rumpdisk replaces
/// them), NFS (libtirpc), daemon(3), ACPI and the ncursesw console.
const HURD_WITHOUT: &str =
    "--without-parted --without-libcrypt --without-libbz2 --without-libz --without-rump \
    --without-libtirpc --without-libdaemon --without-acpica --disable-ncursesw";

/// Userland sources from Debian's archive; busybox's Debian part holds its patches and its
/// configuration for the Hurd.
const USERLAND_SOURCES: &[(&str, &[&str])] = &[("busybox/sid", &["orig", "debian"])];

/// A stage that downloads the named parts of source packages (`orig`, `debian`) into `dir`.
fn debian_sources(
    name: &'static str,
    about: &'static str,
    dir: &str,
    packages: &[(&str, &[&str])],
) -> Stage {
    let fetches: Vec<String> = packages
        .iter()
        .map(|(package, parts)| format!("fetch {package} {}", parts.join(" ")))
        .collect();
    Stage {
        name,
        about,
        after: &["build-tools"],
        inputs: Vec::new(),
        place: Place::BuildRoot,
        script: format!(
            r#"
rm -rf {dir} && mkdir -p {dir} && cd {dir}
# Only the named parts of each source package: a part the archive does not serve fails the
# stage instead of being skipped.
fetch() {{
    local package=$1; shift
    apt-get source --print-uris "$package" | grep "^'" > uris
    for part in "$@"; do
        local line
        line=$(grep -E "^'[^ ]+' [^ ]+\.$part\.tar\.(gz|xz|bz2) " uris | head -n1)
        [ -n "$line" ] || {{ echo "error: $package has no $part tarball"; exit 1; }}
        set -- $line
        /usr/lib/apt/apt-helper download-file "${{1//\'/}}" "$2" "$4"
        echo "$package $2 $4" >> MANIFEST
    done
    rm uris
}}
{}
cat MANIFEST
"#,
            fetches.join("\n")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::engine::Engine;
    use super::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::PathBuf;

    /// Sources made of scratch files, with one patch whose text is `patch`.
    fn sources(dir: &std::path::Path, patch: &str) -> Sources {
        fs::create_dir_all(dir).unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).unwrap();
            path
        };
        Sources {
            dir: dir.to_owned(),
            hurd: file("hurd-x.tar.xz", "hurd"),
            drivers: drivers::ARCHIVES
                .iter()
                .map(|p| file(&format!("{p}x.tar.xz"), p))
                .collect(),
            patches: vec![file("0001-a-fix.patch", patch)],
        }
    }

    fn engine(dir: &std::path::Path) -> Engine {
        Engine {
            cache: dir.to_owned(),
            root: dir.join("root"),
            env: BTreeMap::new(),
            keyed: vec!["TARGET".into()],
        }
    }

    /// The patch series changes the keys of the patched stages only: nothing of the upstream
    /// system is built again, or differently, for a change to a patch.
    #[test]
    fn the_series_keys_only_the_patched_stages() {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("xtask-stages-{}", std::process::id()));
        let one = table(&sources(&dir.join("one"), "fix one"));
        let two = table(&sources(&dir.join("two"), "fix two"));
        let names: Vec<&str> = one.iter().map(|s| s.name).collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at("hurd-drivers") < at("hurd-patched") && at("system") < at("system-patched"));
        let (k1, k2) = (
            engine(&dir).keys(&one).unwrap(),
            engine(&dir).keys(&two).unwrap(),
        );
        let changed: Vec<&str> = names
            .iter()
            .zip(k1.iter().zip(&k2))
            .filter(|(_, (a, b))| a != b)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(changed, ["hurd-patches", "hurd-patched", "system-patched"]);
        // The patched Hurd applies the series by name and installs beside the sysroot.
        let patched = &one[at("hurd-patched")].script;
        assert!(patched.contains("0001-a-fix.patch"), "{patched}");
        assert!(!patched.contains("DESTDIR=\"$SYSROOT\""), "{patched}");
        assert!(one[at("system-patched")].script.contains(SYSTEM_PATCHED));
        fs::remove_dir_all(&dir).unwrap();
    }
}
