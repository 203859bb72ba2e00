//! Password hashing with argon2id on a few dedicated threads (one per core)
//! that run at a lower CPU priority than the threads serving requests:
//! logins can use every idle cycle, and other requests still get the CPU
//! first when logins saturate it.
//!
//! Each thread keeps its argon2 memory (m KiB, 19 MiB by default) from one
//! hash to the next while hashes keep coming. Allocating it per hash cost a
//! quarter of the login rate: `idm` sets glibc's mmap threshold low (see
//! main.rs) so such blocks go back to the system, and every fresh block
//! then costs thousands of page faults, each zeroing a page argon2
//! overwrites anyway. After a second without work the memory is released.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use crossbeam_channel::{RecvTimeoutError, Sender};
use tokio::sync::oneshot;

use crate::clock::RandomSource;
use crate::domain::Password;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Match {
        /// The stored hash is bcrypt or weaker than the configured argon2id.
        needs_rehash: bool,
    },
    NoMatch,
}

pub struct PasswordHasher {
    params: Params,
    threads: HashThreads,
    /// Verified against when the user does not exist, so that unknown and
    /// known usernames cost the same time.
    dummy_hash: String,
    random: Arc<dyn RandomSource>,
}

impl PasswordHasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        random: Arc<dyn RandomSource>,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let dummy_hash = hash_blocking(
            &params,
            "dummy password for timing",
            random.as_ref(),
            &mut HashMemory::default(),
        )
        .context("cannot compute the dummy password hash")?;
        Ok(Self {
            params,
            threads: HashThreads::start(workers, IDLE_MEMORY_RELEASE, Arc::new(|| {}))?,
            dummy_hash,
            random,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String> {
        let params = self.params.clone();
        let password = password.clone();
        let random = self.random.clone();
        self.run(move |memory| hash_blocking(&params, password.expose(), random.as_ref(), memory))
            .await?
            .map_err(Error::internal)
    }

    /// Checks `password` against `stored`, or against a dummy hash when the
    /// account does not exist (`None`), which always fails.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verification> {
        let known = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let params = self.params.clone();
        let password = password.clone();
        let verification = self
            .run(move |memory| verify_blocking(&params, password.expose(), &stored, memory))
            .await?;
        Ok(if known {
            verification
        } else {
            Verification::NoMatch
        })
    }

    async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut HashMemory) -> R + Send + 'static,
    ) -> Result<R> {
        let (answer, result) = oneshot::channel();
        self.threads
            .jobs
            .send(Box::new(move |memory| {
                // The request gave up (client gone) while the job waited:
                // spend no CPU on it.
                if !answer.is_closed() {
                    let _ = answer.send(job(memory));
                }
            }))
            .map_err(|_| Error::Unavailable("password hashing is shutting down".into()))?;
        result
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("password hashing job failed")))
    }
}

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// How long a hashing thread keeps its argon2 memory without work.
const IDLE_MEMORY_RELEASE: Duration = Duration::from_secs(1);

/// One hashing thread's argon2 working memory, grown to the largest cost
/// it has hashed with and reused.
#[derive(Default)]
struct HashMemory {
    blocks: Vec<Block>,
}

impl HashMemory {
    fn for_params(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }

    /// Frees the blocks; true if there were any.
    fn release(&mut self) -> bool {
        !std::mem::take(&mut self.blocks).is_empty()
    }
}

/// The nice value of hashing threads; request threads keep 0. Linux gives
/// a nice-0 thread about nine times the CPU share of a nice-10 one.
const HASH_THREAD_NICE: i32 = 10;

/// Threads that only hash passwords, taking jobs in arrival order. They
/// end when the `PasswordHasher` (the only sender) is dropped.
struct HashThreads {
    jobs: Sender<Job>,
}

/// Told each time a thread gives its memory back (tests wait on it).
type OnRelease = Arc<dyn Fn() + Send + Sync>;

impl HashThreads {
    fn start(count: usize, idle_release: Duration, on_release: OnRelease) -> anyhow::Result<Self> {
        // One queue all threads take from (each waits on its own, so each
        // notices its own idle time).
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for i in 0..count {
            let queue = queue.clone();
            let on_release = on_release.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_own_priority();
                    let mut memory = HashMemory::default();
                    loop {
                        match queue.recv_timeout(idle_release) {
                            // A panicking job drops its answer channel, which
                            // the waiting request reports; the thread stays.
                            Ok(job) => {
                                let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                            }
                            Err(RecvTimeoutError::Timeout) => {
                                if memory.release() {
                                    on_release();
                                }
                            }
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .context("cannot start a password hashing thread")?;
        }
        Ok(Self { jobs })
    }
}

fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    {
        #[allow(unsafe_code)]
        // SAFETY: setpriority only reads its integer arguments. On Linux the
        // nice value is per thread, and PRIO_PROCESS with id 0 names the
        // calling thread.
        let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASH_THREAD_NICE) } != 0;
        if failed {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the priority of a password hashing thread"
            );
        }
    }
}

/// The raw argon2 output for `password` and `salt` (as in a PHC string),
/// computed in `memory` instead of a fresh allocation.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: Salt<'_>,
    memory: &mut HashMemory,
) -> password_hash::Result<Output> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                memory.for_params(params),
            )
            .map_err(password_hash::Error::from)
    })
}

/// A PHC string, as `Argon2::hash_password` writes it.
fn hash_blocking(
    params: &Params,
    password: &str,
    random: &dyn RandomSource,
    memory: &mut HashMemory,
) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let phc = compute(&argon2, params, password, salt.as_salt(), memory).and_then(|output| {
        Ok(PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    });
    phc.map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// Recomputes `stored` from `password` with the algorithm, version and
/// parameters `stored` names; `Output` compares in constant time.
fn argon2_matches(
    password: &str,
    stored: &PasswordHash<'_>,
    memory: &mut HashMemory,
) -> password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(stored)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    Ok(compute(&argon2, &params, password, salt, memory)? == expected)
}

fn verify_blocking(
    params: &Params,
    password: &str,
    stored: &str,
    memory: &mut HashMemory,
) -> Verification {
    // Accounts imported from the old service carry bcrypt hashes.
    if stored.starts_with("$2") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Match { needs_rehash: true },
            _ => Verification::NoMatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::NoMatch;
    };
    if !argon2_matches(password, &parsed, memory).unwrap_or(false) {
        return Verification::NoMatch;
    }
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map_or(true, |p| {
            p.m_cost() < params.m_cost()
                || p.t_cost() < params.t_cost()
                || p.p_cost() < params.p_cost()
        });
    Verification::Match {
        needs_rehash: weaker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(19456, 2, 1, Arc::new(OsRandom)).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_below_the_priority_of_requests() {
        // SAFETY: getpriority only reads its integer arguments.
        #[allow(unsafe_code)]
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(
            hasher().run(move |_| nice()).await.unwrap(),
            HASH_THREAD_NICE
        );
        assert_eq!(nice(), 0, "the request thread keeps its priority");
    }

    fn pw(s: &str) -> Password {
        Password::for_login(s.into()).unwrap()
    }

    #[tokio::test]
    async fn argon2id_round_trip_with_configured_params() {
        let h = hasher();
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            h.verify(&pw("correct horse"), Some(&hash)).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify(&pw("wrong"), Some(&hash)).await.unwrap(),
            Verification::NoMatch
        );
    }

    /// Hashes made here are standard PHC strings the argon2 crate verifies,
    /// and hashes the crate made (other variants and costs, e.g. from an
    /// older configuration) verify here, in reused memory.
    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = hasher();
        let ours = h.hash(&pw("shared secret")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        let stock = Argon2::default();
        assert!(stock.verify_password(b"shared secret", &parsed).is_ok());
        assert!(stock.verify_password(b"shared secrex", &parsed).is_err());

        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        for (algorithm, m, t) in [
            (Algorithm::Argon2id, 65536, 1),
            (Algorithm::Argon2id, 8192, 3),
            (Algorithm::Argon2i, 19456, 2),
            (Algorithm::Argon2d, 4096, 1),
        ] {
            let params = Params::new(m, t, 1, None).unwrap();
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"shared secret", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                h.verify(&pw("shared secret"), Some(&theirs)).await.unwrap(),
                Verification::Match {
                    needs_rehash: algorithm != Algorithm::Argon2id || m < 19456 || t < 2
                },
                "{theirs}"
            );
            assert_eq!(
                h.verify(&pw("shared secreT"), Some(&theirs)).await.unwrap(),
                Verification::NoMatch,
                "{theirs}"
            );
        }
        let truncated = &ours[..ours.len() - 4];
        assert_eq!(
            h.verify(&pw("shared secret"), Some(truncated))
                .await
                .unwrap(),
            Verification::NoMatch
        );
    }

    /// Every hashing thread keeps its memory between hashes and gives it
    /// back once no work came for the idle period, also while another
    /// thread is waiting for work.
    #[test]
    fn hash_memory_is_reused_then_released_when_idle() {
        const THREADS: usize = 2;
        let (released_tx, released) = std::sync::mpsc::channel();
        let released_tx = std::sync::Mutex::new(released_tx);
        let on_release: OnRelease = Arc::new(move || {
            released_tx.lock().unwrap().send(()).unwrap();
        });
        let threads = HashThreads::start(THREADS, Duration::from_millis(50), on_release).unwrap();
        let params = Params::new(8192, 1, 1, None).unwrap();
        // Runs `job` on every thread at once (a barrier keeps each thread
        // from taking a second one) and returns what each reported.
        let on_every_thread = |job: fn(&mut HashMemory, &Params) -> usize| {
            let barrier = Arc::new(std::sync::Barrier::new(THREADS));
            let (tx, rx) = std::sync::mpsc::channel();
            for _ in 0..THREADS {
                let (barrier, tx, params) = (barrier.clone(), tx.clone(), params.clone());
                threads
                    .jobs
                    .send(Box::new(move |memory| {
                        let report = job(memory, &params);
                        barrier.wait();
                        tx.send(report).unwrap();
                    }))
                    .unwrap();
            }
            (0..THREADS).map(|_| rx.recv().unwrap()).collect::<Vec<_>>()
        };
        // Reports how many blocks the thread held before hashing.
        let hash = |memory: &mut HashMemory, params: &Params| {
            let held = memory.blocks.len();
            hash_blocking(params, "pw", &crate::clock::OsRandom, memory).unwrap();
            held
        };
        assert_eq!(on_every_thread(hash), [0; THREADS]);
        assert_eq!(
            on_every_thread(hash),
            [8192; THREADS],
            "kept between hashes"
        );
        // Wait until both threads say they released their memory.
        for _ in 0..THREADS {
            released.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        assert_eq!(
            on_every_thread(|memory, _| memory.blocks.len()),
            [0; THREADS],
            "released after the idle period"
        );
    }

    #[tokio::test]
    async fn unknown_user_never_matches_even_the_dummy_password() {
        let h = hasher();
        assert_eq!(
            h.verify(&pw("dummy password for timing"), None)
                .await
                .unwrap(),
            Verification::NoMatch
        );
    }

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_ask_for_rehash() {
        let h = hasher();
        let old = bcrypt::hash("old secret", 4).unwrap();
        assert_eq!(
            h.verify(&pw("old secret"), Some(&old)).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            h.verify(&pw("nope"), Some(&old)).await.unwrap(),
            Verification::NoMatch
        );
    }
}
