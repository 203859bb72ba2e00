use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // First: the data folder holds password hashes, signing secrets and
    // mails with live reset links, and SQLite and lettre create files there
    // with the umask's mode (0644 under the usual 022). See private_files.
    idm::private_files::restrict_new_files_to_owner();
    return_freed_memory_promptly();
    idm::cli::run(idm::cli::Cli::parse()).await
}

/// Each password hash allocates `argon2_memory_kib` (19 MiB by default).
/// glibc raises its mmap threshold after such blocks are freed, so later
/// ones come from per-thread heaps that keep the memory: resident memory
/// grew to gigabytes under sustained logins. A fixed threshold keeps large
/// blocks mmapped and returns them to the system when freed.
fn return_freed_memory_promptly() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only adjusts allocator settings and is thread-safe.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
