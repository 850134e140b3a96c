//! The stages that build the Hurd's own disk drivers after the first Hurd: zlib, libpciaccess,
//! libuuid and libparted, the NetBSD rump kernel as Debian's `rumpkernel` package builds it, and
//! then the Hurd again with all of them — `rumpdisk`, `rumpdisk.static`, `pci-arbiter.static`,
//! and libstore with `part:` stores (Debian's boot line roots the system on `part:2:device:wd0`).
//!
//! libparted needs the Hurd's libstore and libshouldbeinlibc, and the Hurd's libstore needs
//! libparted: hence two Hurd builds, the first without parted (`stages::table`'s `hurd`).
//! Every fix beyond Debian's own patches is in its script with the error it cures.

use super::engine::{in_root, Place, Stage};
use std::path::PathBuf;

/// The source archives these stages take from the shared folder (the package archive does not
/// serve them here): a name prefix each, found by [`Sources::find`](super::sources::Sources::find).
pub const ARCHIVES: &[&str] = &[
    "zlib_",
    "libpciaccess_",
    "util-linux_",
    "parted_",
    "rumpkernel-",
];

/// NetBSD's `build.sh` as `debian/rules` runs it (override_dh_auto_build-arch), for hurd-amd64
/// cross-built: the host tools need GCC 14 (sid's default is newer) and `-fpermissive`
/// (`sed/process.c` declares `wcwidth` implicitly, an error since GCC 14); target links find
/// `crti.o` and glibc in the sysroot (`TARGET_LDADD`; Debian uses its native multiarch paths);
/// profiled objects are skipped (`MKPROFILE=no`: nobody packages them, a third of the time).
const BUILD_SH: &str = r#"cd /build/rump/buildrump.sh/src
build_sh() {
    env -u MAKEFLAGS HOST_CC=gcc-14 HOST_CFLAGS="-O -fpermissive" \
        TARGET_CC=$TARGET-gcc TARGET_CXX=$TARGET-gcc TARGET_LD=$TARGET-ld TARGET_MIG=$TARGET-mig \
        TARGET_LDADD="-B$SYSROOT/usr/lib -L$SYSROOT/usr/lib -L$SYSROOT/lib" \
        _GCC_CRTENDS= _GCC_CRTEND= _GCC_CRTBEGINS= _GCC_CRTBEGIN= _GCC_CRTI= _GCC_CRTN= \
        BSDOBJDIR=/build/rump/obj PATH="/build/rump/bin:$PATH" \
        ./build.sh \
            -V TOOLS_BUILDRUMP=yes \
            -V MKBINUTILS=no -V MKGDB=no -V MKGROFF=no -V MKDTRACE=no -V MKZFS=no -V MKPROFILE=no \
            -V TOPRUMP=/build/rump/buildrump.sh/src/sys/rump \
            -V BUILDRUMP_CPPFLAGS="-Wno-error=stringop-overread" \
            -V RUMPUSER_EXTERNAL_DPLIBS=pthread \
            -V CPPFLAGS="-I../../obj/destdir.amd64/usr/include -D_FILE_OFFSET_BITS=64 -DRUMP_REGISTER_T=int -DRUMPUSER_CONFIG=yes -DNO_PCI_MSI_MSIX=yes -DNUSB_DMA=1 -DPAE" \
            -V CWARNFLAGS="-Wno-error=maybe-uninitialized -Wno-error=address-of-packed-member -Wno-error=unused-variable -Wno-error=stack-protector -Wno-error=array-parameter -Wno-error=array-bounds -Wno-error=stringop-overflow" \
            -V LIBCRTBEGIN=" " -V LIBCRTEND=" " -V LIBCRT0=" " -V LIBCRTI=" " \
            -V MIG=mig \
            -V _GCC_CRTENDS=" " -V _GCC_CRTEND=" " -V _GCC_CRTBEGINS=" " -V _GCC_CRTBEGIN=" " \
            -V _GCC_CRTI=" " -V _GCC_CRTN=" " \
            -V TARGET_LDADD="-B$SYSROOT/usr/lib -L$SYSROOT/usr/lib -L$SYSROOT/lib" \
            -U -u -T ./obj/tooldir -m amd64 -j "$(nproc)" "$@"
}
"#;

/// The stages, in order, made from the [`ARCHIVES`] found; `after` names stages of
/// [`super::stages::table`].
pub fn stages(archives: &[PathBuf]) -> Vec<Stage> {
    vec![
        Stage {
            name: "driver-sources",
            about: "zlib, libpciaccess, util-linux, parted and rumpkernel sources from the local archives",
            after: &["build-root"],
            inputs: archives.to_vec(),
            place: Place::Host,
            script: format!(
                r#"
rm -rf "$ROOT/src/drivers" && mkdir -p "$ROOT/src/drivers"
for prefix in {}; do
    found=("$SOURCES_DIR/$prefix"*.tar.*)
    [ ${{#found[@]}} -eq 1 ] && [ -f "${{found[0]}}" ] || {{ echo "error: no single $prefix archive in $SOURCES_DIR"; exit 1; }}
    cp "${{found[0]}}" "$ROOT/src/drivers/"
done
ls -l "$ROOT/src/drivers"
"#,
                ARCHIVES.join(" ")
            ),
        },
        in_root(
            "zlib",
            "zlib (rumpdisk links -lz; gzip stores)",
            &["libgcc", "driver-sources"],
            r#"
rm -rf /build/zlib && mkdir -p /build/zlib && cd /build/zlib
tar xzf /src/drivers/zlib_*.tar.gz --strip-components=1
CHOST=$TARGET ./configure --prefix=/usr
make
make install DESTDIR="$SYSROOT"
"#,
        ),
        in_root(
            "libpciaccess",
            "libpciaccess with its Hurd back end (pci-arbiter, rumpdisk)",
            &["libgcc", "driver-sources"],
            r#"
rm -rf /build/libpciaccess && mkdir -p /build/libpciaccess && cd /build/libpciaccess
tar xzf /src/drivers/libpciaccess_*.tar.gz --strip-components=1
# hurd_pci.c hands the addresses of size_t and vm_size_t variables to MIG stubs that take
# mach_msg_type_number_t * (pci_get_dev_regions, pci_get_dev_rom, pci_conf_read, dir_readdir):
# GCC 14 stops on it (-Wincompatible-pointer-types), and on x86_64 the stub writes 4 bytes of an
# 8-byte count. The variables become mach_msg_type_number_t.
before=$(grep -c 'mach_msg_type_number_t' src/hurd_pci.c || true)
sed -i -e 's/^    size_t size;$/    mach_msg_type_number_t size;/' \
       -e 's/^    size_t nread;$/    mach_msg_type_number_t nread;/' \
       -e 's/^    vm_size_t size;$/    mach_msg_type_number_t size;/' src/hurd_pci.c
[ $(grep -c 'mach_msg_type_number_t' src/hurd_pci.c) -eq $((before + 3)) ] || { echo "error: hurd_pci.c: the three count variables were not found"; exit 1; }
./configure --host=$TARGET --prefix=/usr
make
make install DESTDIR="$SYSROOT"
"#,
        ),
        in_root(
            "libuuid",
            "libuuid from util-linux (libparted needs it)",
            &["libgcc", "driver-sources"],
            r#"
rm -rf /build/util-linux && mkdir -p /build/util-linux && cd /build/util-linux
tar xJf /src/drivers/util-linux_*.tar.xz --strip-components=1
./configure --host=$TARGET --prefix=/usr --disable-all-programs --enable-libuuid \
    --disable-nls --without-python --without-systemd --without-udev --disable-bash-completion \
    --disable-makeinstall-chown --disable-asciidoc
make
make install DESTDIR="$SYSROOT"
"#,
        ),
        in_root(
            "libparted",
            "libparted (libstore's part: stores), against the first Hurd's libstore",
            &["hurd", "libuuid"],
            r#"
rm -rf /build/parted && mkdir -p /build/parted && cd /build/parted
tar xJf /src/drivers/parted_*.tar.xz --strip-components=1
# Only the library: the parted program is not on the image. No device-mapper or readline on the
# Hurd.
./configure --host=$TARGET --prefix=/usr --disable-device-mapper --without-readline --disable-nls
make -C lib
make -C libparted
make -C libparted install DESTDIR="$SYSROOT"
make -C include install DESTDIR="$SYSROOT"
"#,
        ),
        in_root(
            "rump-source",
            "Debian's rumpkernel tree with its 28 Hurd patches",
            &["build-tools", "driver-sources"],
            r#"
rm -rf /build/rump && mkdir -p /build/rump
tar xJf /src/drivers/rumpkernel-*.tar.xz -C /build/rump --strip-components=1
cd /build/rump
sed -e '/^#/d' -e '/^$/d' debian/patches/series | while read -r patch _; do
    patch -p1 < "debian/patches/$patch"
done
# build.sh's tool wrapper calls `mig`: reach the cross MIG through a script (a symlink breaks
# the MIG script's search for its migcom).
mkdir -p /build/rump/bin
printf '#!/bin/sh\nexec %s-mig "$@"\n' "$TARGET" > /build/rump/bin/mig && chmod +x /build/rump/bin/mig
"#,
        ),
        in_root(
            "rump-tools",
            "NetBSD's host tools for the rump kernel (build.sh tools)",
            &["rump-source"],
            &format!(
                r#"
# NetBSD's tools/compat configure stops with "zlib must be installed in a compiler-visible path"
# without the host's zlib headers (Debian's Build-Depends has zlib1g-dev).
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zlib1g-dev
{BUILD_SH}
rm -rf obj/tooldir /build/rump/obj
build_sh tools
"#
            ),
        ),
        in_root(
            "rump-kernel",
            "the rump kernel libraries (build.sh rump, librumpuser, pci-userspace)",
            &["rump-tools", "libgcc", "zlib"],
            &format!(
                r#"
# glibc's libc.so linker script names libc.so.0.3 and its neighbours by absolute path; the rump
# links use a --sysroot of their own, so those paths must exist in the build root too.
for f in $(grep -o ' /[^ )]*' "$SYSROOT/usr/lib/libc.so"); do
    [ -e "$SYSROOT$f" ] || {{ echo "error: $SYSROOT$f (named by libc.so) is missing"; exit 1; }}
    ln -sfn "$SYSROOT$f" "$f"
done
# librumpuser's configure is older than --runstatedir: configure it by hand, as dh_auto_configure
# would otherwise.
cd /build/rump/buildrump.sh/src/lib/librumpuser
./configure --build=x86_64-linux-gnu --host=$TARGET --prefix=/usr
{BUILD_SH}
build_sh rump
RUMPMAKE=/build/rump/buildrump.sh/src/obj/tooldir/bin/nbmake-amd64
export PATH="/build/rump/bin:$PATH"
(cd /build/rump/buildrump.sh/src/lib/librumpuser && env -u MAKEFLAGS RUMPRUN=true $RUMPMAKE dependall)
(cd /build/rump/pci-userspace/src-gnu && env -u MAKEFLAGS $RUMPMAKE dependall)
# Debian's install step: the headers, and every librump* shared library and archive, less
# librumpkern_z (zlib's own is used). The objects are built in the tree (Debian also searches
# its obj folder, which this build leaves empty).
cd /build/rump
mkdir -p "$SYSROOT/usr/include" "$SYSROOT/usr/lib"
rm -rf "$SYSROOT/usr/include/rump" && cp -a buildrump.sh/src/sys/rump/include/rump "$SYSROOT/usr/include/"
find buildrump.sh/src -type f,l -name 'librump*.so*' -exec cp -a {{}} "$SYSROOT/usr/lib/" \;
find buildrump.sh/src -type f -name 'librump*.a' -exec cp -a {{}} "$SYSROOT/usr/lib/" \;
rm -f "$SYSROOT"/usr/lib/*.map "$SYSROOT"/usr/lib/librumpkern_z.*
ls "$SYSROOT/usr/lib" | grep -c '^librump'
"#
            ),
        ),
        in_root(
            "hurd-drivers",
            "the Hurd again with parted, zlib, libpciaccess and rump: part: stores, rumpdisk, pci-arbiter",
            &["hurd", "libparted", "libpciaccess", "rump-kernel"],
            &hurd_with_drivers("/build/hurd-src", "/build/hurd-drivers", "$SYSROOT"),
        ),
    ]
}

/// The recipe of a Hurd build with the drivers' libraries: the tree in `src` configured and built
/// in `build` (made afresh), installed into `destdir`.
pub(super) fn hurd_with_drivers(src: &str, build: &str, destdir: &str) -> String {
    format!(
        r#"
rm -rf {build} && mkdir {build} && cd {build}
export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/pkgconfig:$SYSROOT/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
# configure's librump test links -lrump alone, which leaves rumpuser_* undefined; with
# --as-needed the unused library is dropped and the test passes (the Hurd's own links name
# every rump library they need).
{src}/configure --host=$TARGET --prefix= --disable-profile {HURD_DRIVERS_WITHOUT} \
    --enable-static-progs=ext2fs,exec,rumpdisk,pci-arbiter LDFLAGS=-Wl,--as-needed
for found in HAVE_LIBRUMP HAVE_LIBRUMP_VFSNOFIFO HAVE_LIBPCIACCESS; do
    grep -q "^$found = yes" config.make || {{ echo "error: configure did not find $found"; exit 1; }}
done
grep -q -- '-lparted' config.make || {{ echo "error: configure did not find libparted"; exit 1; }}
# rumpnet does not link against this rump kernel (rumpns_rss_getkey undefined) and no disk
# needs it: the Hurd's own BROKEN marker keeps the top Makefile out of it.
mkdir -p rumpnet && touch rumpnet/BROKEN
make
make install DESTDIR="{destdir}"
ls -l "{destdir}/hurd/rumpdisk" "{destdir}/hurd/rumpdisk.static" "{destdir}/hurd/pci-arbiter.static"
"#
    )
}

/// What the second Hurd build still leaves out: crypt(3), bzip2 stores, NFS, daemon(3), ACPI and
/// the ncursesw console (none is on a disk driver's path).
const HURD_DRIVERS_WITHOUT: &str = "--without-libcrypt --without-libbz2 --without-libtirpc \
    --without-libdaemon --without-acpica --disable-ncursesw";
