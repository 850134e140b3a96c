//! The root disk as a Debian GNU/Hurd install lays it out: an MBR partition table, swap as the
//! first partition and the root file system as the second (`part:2:device:wd0`).

use crate::util::{run_quiet, Error};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

/// 512-byte sectors, as the partition table counts them.
pub const SECTOR: u64 = 512;
/// The first partition starts at 1 MiB, as fdisk and Debian's installer align it.
const FIRST_START: u64 = 2048;
/// The swap partition's size: 64 MiB (`hurd-swap` pages to it, and ran out of room in 16; the
/// others do not page).
const SWAP_SECTORS: u64 = 64 * 2048;
/// The Linux swap area's page size, and where its signature and header lie in the first page.
const SWAP_PAGE: u64 = 4096;
const SWAP_MAGIC_AT: u64 = SWAP_PAGE - 10;
const SWAP_HEADER_AT: u64 = 1024;

/// Where a partition lies on its disk, in sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub start: u64,
    pub sectors: u64,
}

/// The swap partition of a disk made by [`debian_disk`] (nothing pages in the scenarios: the
/// Hurd bench uses it as raw space).
pub fn swap_partition() -> Partition {
    Partition {
        start: FIRST_START,
        sectors: SWAP_SECTORS,
    }
}

/// The root partition of a disk made by [`debian_disk`].
pub fn root_partition(fs_bytes: u64) -> Partition {
    Partition {
        start: FIRST_START + SWAP_SECTORS,
        sectors: fs_bytes.div_ceil(SECTOR),
    }
}

/// Writes `out`: an MBR disk whose first partition is swap (type 82, with a swap area's header
/// as `mkswap` writes it) and whose second holds the file system image `fs` (type 83); returns
/// the second partition.
pub fn debian_disk(fs: &Path, out: &Path) -> Result<Partition, Error> {
    let bytes = fs::read(fs).map_err(|e| Error::io(fs, e))?;
    let root = root_partition(bytes.len() as u64);
    let _ = fs::remove_file(out);
    let mut disk = fs::File::create(out).map_err(|e| Error::io(out, e))?;
    disk.set_len((root.start + root.sectors) * SECTOR)
        .map_err(|e| Error::io(out, e))?;
    disk.seek(SeekFrom::Start(root.start * SECTOR))
        .and_then(|_| disk.write_all(&bytes))
        .map_err(|e| Error::io(out, e))?;
    drop(disk);
    sfdisk(
        out,
        &format!(
            "label: dos\nstart={FIRST_START}, size={SWAP_SECTORS}, type=82\nstart={}, size={}, type=83\n",
            root.start, root.sectors
        ),
    )?;
    // After the table: sfdisk wipes the signatures it finds.
    fs::OpenOptions::new()
        .write(true)
        .open(out)
        .and_then(|mut disk| write_swap_header(&mut disk, swap_partition()))
        .map_err(|e| Error::io(out, e))?;
    Ok(root)
}

/// Writes the header of a Linux swap area (version 1, no bad pages) at the start of `part`, as
/// Debian's installer has `mkswap` write it: mach-defpager pages only to a partition that has one
/// (here `mkswap` cannot write at an offset).
fn write_swap_header(disk: &mut fs::File, part: Partition) -> std::io::Result<()> {
    let start = part.start * SECTOR;
    let last_page = (part.sectors * SECTOR / SWAP_PAGE - 1) as u32;
    let header: Vec<u8> = [1u32, last_page, 0].iter().flat_map(|word| word.to_le_bytes()).collect();
    disk.seek(SeekFrom::Start(start + SWAP_HEADER_AT))?;
    disk.write_all(&header)?;
    disk.seek(SeekFrom::Start(start + SWAP_MAGIC_AT))?;
    disk.write_all(b"SWAPSPACE2")
}

/// Writes the partition table `table` (sfdisk's script format) onto the disk image `image`.
pub fn sfdisk(image: &Path, table: &str) -> Result<(), Error> {
    let script = image.with_extension("sfdisk");
    fs::write(&script, table).map_err(|e| Error::io(&script, e))?;
    let input = fs::File::open(&script).map_err(|e| Error::io(&script, e))?;
    run_quiet(
        Command::new("sfdisk")
            .args(["--quiet", "--no-reread", "--no-tell-kernel"])
            .arg(image)
            .stdin(input),
        "sfdisk",
    )?;
    fs::remove_file(&script).map_err(|e| Error::io(&script, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The disk holds the file system at the second partition's start, and the table says so.
    #[test]
    fn the_disk_has_the_file_system_in_its_second_partition() {
        let dir = std::env::temp_dir().join(format!("xtask-partition-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fs_image = dir.join("fs.img");
        let contents: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        fs::write(&fs_image, &contents).unwrap();
        let disk = dir.join("disk.img");
        let root = debian_disk(&fs_image, &disk).unwrap();
        assert_eq!(
            root,
            Partition {
                start: 133120,
                sectors: 2048
            }
        );
        let bytes = fs::read(&disk).unwrap();
        assert_eq!(&bytes[510..512], &[0x55, 0xAA]);
        // The swap area's header: version 1, its last page (64 MiB of 4 KiB pages), no bad
        // pages, and the signature at the end of its first page.
        let swap = (2048 * SECTOR) as usize;
        assert_eq!(&bytes[swap + 1024..swap + 1036], &[1, 0, 0, 0, 0xff, 0x3f, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[swap + 4086..swap + 4096], b"SWAPSPACE2");
        let at = (root.start * SECTOR) as usize;
        assert_eq!(&bytes[at..], &contents[..]);
        let listed = Command::new("sfdisk")
            .arg("-d")
            .arg(&disk)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listed.contains("start=        2048, size=      131072, type=82"),
            "{listed}"
        );
        assert!(
            listed.contains("start=      133120, size=        2048, type=83"),
            "{listed}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
