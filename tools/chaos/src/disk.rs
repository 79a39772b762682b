//! Full disks, as root: each node's data directory lives on a small tmpfs of its own, which a
//! fault fills to the last byte with a filler file and the heal empties again. Every mount is
//! removed when the value is dropped.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The filler's name, beside the data directory on the node's tmpfs.
const FILLER: &str = "filler";

/// The tmpfs mounts of one run.
#[derive(Default)]
pub struct Disks {
    mounts: Vec<PathBuf>,
}

impl Disks {
    /// Mounts a tmpfs of `size_mib` at `dir` (created).
    pub fn mount(&mut self, dir: &Path, size_mib: u64) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let options = format!("size={size_mib}m,mode=0700");
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .with_context(|| format!("mounting a tmpfs at {}", dir.display()))?;
        self.mounts.push(dir.to_path_buf());
        Ok(())
    }
}

/// Fills the filesystem of `dir` until it has no byte left; returns how much was written.
pub fn fill(dir: &Path) -> Result<u64> {
    let path = dir.join(FILLER);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut written = 0u64;
    // Then smaller and smaller writes, down to one byte, so nothing at all is left.
    let mut size = chunk.len();
    while size > 0 {
        match file.write(&chunk[..size]) {
            Ok(0) => size /= 2,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => size /= 2,
            Err(e) => return Err(e).with_context(|| format!("filling {}", path.display())),
        }
    }
    Ok(written)
}

/// Removes the filler of `dir`.
pub fn unfill(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILLER));
}

impl Drop for Disks {
    fn drop(&mut self) {
        for dir in self.mounts.iter().rev() {
            // Detached if something still holds it open: it goes as soon as that does.
            if let Err(e) = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("halo-chaos: could not unmount {}: {e}", dir.display());
            }
        }
    }
}
