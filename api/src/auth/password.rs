//! argon2id password hashing, bounded.
//!
//! One hash costs tens of milliseconds of CPU and 19 MiB of memory by design. Run
//! on as many threads as a flood of logins asks for, that memory piles up faster
//! than the allocator gives it back (1.4 GB after a few hundred logins). So at
//! most one hash per core runs at a time, each in a memory buffer that is kept
//! and reused rather than allocated per hash: the api's memory for hashing is
//! fixed at cores × 19 MiB. Callers beyond that queue; beyond [`MAX_WAITING`]
//! queued they are turned away with [`PasswordError::Busy`] (503, retry later).

use std::{
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use rand::RngCore;
use tokio::sync::Semaphore;

/// Hashes queued for a core before new ones are refused.
pub const MAX_WAITING: usize = 64;
/// How long a queued hash may wait for a core.
const MAX_WAIT: Duration = Duration::from_secs(10);
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("too many passwords are being checked at once")]
    Busy,
}

struct Hashers {
    cores: Semaphore,
    waiting: AtomicUsize,
    /// Memory buffers of finished hashes, for the next ones (at most one per core).
    buffers: Mutex<Vec<Vec<Block>>>,
}

static HASHERS: LazyLock<Hashers> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Hashers {
        cores: Semaphore::new(cores),
        waiting: AtomicUsize::new(0),
        buffers: Mutex::new(Vec::with_capacity(cores)),
    }
});

/// Runs `work` on a blocking thread once a core is free, with a reused buffer.
async fn on_a_core<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let hashers = &*HASHERS;
    if hashers.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
        hashers.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(PasswordError::Busy);
    }
    let permit = tokio::time::timeout(MAX_WAIT, hashers.cores.acquire()).await;
    hashers.waiting.fetch_sub(1, Ordering::SeqCst);
    let Ok(Ok(permit)) = permit else {
        return Err(PasswordError::Busy);
    };
    let result = tokio::task::spawn_blocking(move || {
        let mut buffer = hashers
            .buffers
            .lock()
            .ok()
            .and_then(|mut buffers| buffers.pop())
            .unwrap_or_default();
        let result = work(&mut buffer);
        if let Ok(mut buffers) = hashers.buffers.lock() {
            buffers.push(buffer);
        }
        result
    })
    .await;
    drop(permit);
    Ok(result?)
}

/// The computed hash of `password` under the algorithm, version, parameters and
/// salt given, in `buffer` (grown to the parameters' size if needed).
fn compute(
    password: &[u8],
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: &[u8],
    output_len: usize,
    buffer: &mut Vec<Block>,
) -> Result<Vec<u8>, argon2::Error> {
    let blocks = params.block_count();
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; output_len];
    Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut buffer[..blocks],
    )?;
    Ok(out)
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for a new password.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    on_a_core(move |buffer| phc_hash(password.as_bytes(), &salt, buffer))
        .await?
        .map_err(PasswordError::Hash)
}

fn phc_hash(password: &[u8], salt: &[u8], buffer: &mut Vec<Block>) -> Result<String, String> {
    let params = Params::default();
    let out = compute(
        password,
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        salt,
        Params::DEFAULT_OUTPUT_LEN,
        buffer,
    )
    .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `stored` (a PHC string, whatever its parameters).
fn matches(password: &[u8], stored: &str, buffer: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str());
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let params = Params::try_from(&parsed);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
        return false;
    };
    compute(
        password,
        algorithm,
        version,
        params,
        salt.as_ref(),
        expected.len(),
        buffer,
    )
    .ok()
    .and_then(|out| Output::new(&out).ok())
    // `Output` compares in constant time.
    .is_some_and(|computed| &computed == expected)
}

/// A hash of a password nobody has, checked when the email is unknown so that a
/// wrong email takes as long as a wrong password and reveals nothing.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| phc_hash(b"not-a-real-password", b"dummy-salt-16byt", &mut Vec::new()).ok());

/// `true` when `password` matches `stored`; with `stored = None` it does the same
/// work and answers `false`.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    on_a_core(move |buffer| {
        let known = stored.is_some();
        let Some(hash) = stored.or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        matches(password.as_bytes(), &hash, buffer) && known
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[tokio::test]
    async fn hashes_are_standard_argon2id_and_verify() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        // Any argon2 implementation agrees.
        let parsed = PasswordHash::new(&stored).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(!verify("correct horse".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_elsewhere_with_other_parameters_verify() {
        use argon2::password_hash::PasswordHasher;
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(
            verify("correct horse".into(), Some(other.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("correct horsf".into(), Some(other)).await.unwrap());
        assert!(!verify("x".into(), Some("not a hash".into())).await.unwrap());
    }
}
