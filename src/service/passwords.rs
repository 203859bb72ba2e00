//! Password hashing with argon2id on a few dedicated threads (one per core)
//! that run at a lower CPU priority than the threads serving requests:
//! logins can use every idle cycle, and other requests still get the CPU
//! first when logins saturate it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
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
        let dummy_hash = hash_blocking(&params, "dummy password for timing", random.as_ref())
            .context("cannot compute the dummy password hash")?;
        Ok(Self {
            params,
            threads: HashThreads::start(workers)?,
            dummy_hash,
            random,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String> {
        let params = self.params.clone();
        let password = password.clone();
        let random = self.random.clone();
        self.run(move || hash_blocking(&params, password.expose(), random.as_ref()))
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
            .run(move || verify_blocking(&params, password.expose(), &stored))
            .await?;
        Ok(if known {
            verification
        } else {
            Verification::NoMatch
        })
    }

    async fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        let (answer, result) = oneshot::channel();
        self.threads
            .jobs
            .send(Box::new(move || {
                // The request gave up (client gone) while the job waited:
                // spend no CPU on it.
                if !answer.is_closed() {
                    let _ = answer.send(job());
                }
            }))
            .map_err(|_| Error::Unavailable("password hashing is shutting down".into()))?;
        result
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("password hashing job failed")))
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of hashing threads; request threads keep 0. Linux gives
/// a nice-0 thread about nine times the CPU share of a nice-10 one.
const HASH_THREAD_NICE: i32 = 10;

/// Threads that only hash passwords, taking jobs in arrival order. They
/// end when the `PasswordHasher` (the only sender) is dropped.
struct HashThreads {
    jobs: mpsc::Sender<Job>,
}

impl HashThreads {
    fn start(count: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_own_priority();
                    loop {
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job drops its answer channel, which the
                        // waiting request reports; the thread stays.
                        let _ = catch_unwind(AssertUnwindSafe(job));
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

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(
    params: &Params,
    password: &str,
    random: &dyn RandomSource,
) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(params: &Params, password: &str, stored: &str) -> Verification {
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
    if argon2(params)
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
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
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(hasher().run(nice).await.unwrap(), HASH_THREAD_NICE);
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
