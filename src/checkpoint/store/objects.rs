//! Checkpoint files in an S3-compatible object store (`s3://BUCKET/PREFIX`), through the
//! `object_store` crate. Credentials, region and endpoint come from the usual environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint such as a local test server).
//!
//! The crate is async; each call here blocks on a one-thread runtime the store owns, so the
//! checkpoint protocol stays the same plain code for a directory and an object store.

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use std::io;

/// An object store under a prefix.
pub struct Objects {
    store: Box<dyn ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

fn io_error(url: &str, e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(format!("{url}: {}", one_line(&e.to_string()))),
    }
}

/// An error on one line: the server's XML body (everything after its first line) left out.
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let first = first.split("<?xml").next().unwrap_or(first);
    first.trim().trim_end_matches(':').to_string()
}

impl Objects {
    /// Opens `s3://BUCKET/PREFIX` and checks that the bucket answers.
    pub fn open(url: &str) -> io::Result<Self> {
        let rest = url.strip_prefix(super::S3_SCHEME).unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(io::Error::other(format!(
                "{url}: expected s3://BUCKET/PREFIX"
            )));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| io::Error::other(format!("{url}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-objects")
            .enable_all()
            .build()?;
        let objects = Objects {
            store: Box::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            runtime,
        };
        // A clear error now rather than at the first checkpoint.
        let root = objects.path("");
        objects
            .runtime
            .block_on(objects.store.list_with_delimiter(Some(&root)))
            .map_err(|e| {
                io::Error::other(format!("cannot be listed: {}", one_line(&e.to_string())))
            })?;
        Ok(objects)
    }

    fn path(&self, name: &str) -> ObjectPath {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => ObjectPath::from(name),
            (false, true) => ObjectPath::from(self.prefix.as_str()),
            (false, false) => ObjectPath::from(format!("{}/{name}", self.prefix)),
        }
    }

    fn url(&self, name: &str) -> String {
        format!("{}{}", super::S3_SCHEME, self.path(name))
    }

    /// Writes `name` (one PUT: atomic).
    pub fn put(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let payload = PutPayload::from(bytes.to_vec());
        self.runtime
            .block_on(self.store.put(&self.path(name), payload))
            .map(drop)
            .map_err(|e| io_error(&self.url(name), e))
    }

    /// Reads `name`; `NotFound` when it does not exist.
    pub fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        let path = self.path(name);
        self.runtime
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| io_error(&self.url(name), e))
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.runtime
            .block_on(self.store.head(&self.path(name)))
            .is_ok()
    }

    /// The names directly under `dir`, and whether each is a "directory" (a common prefix).
    pub fn entries(&self, dir: &str) -> io::Result<Vec<(String, bool)>> {
        let path = self.path(dir);
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&path)))
            .map_err(|e| io_error(&self.url(dir), e))?;
        let dirs = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(|n| (n.to_string(), true)));
        let files = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(|n| (n.to_string(), false)));
        Ok(dirs.chain(files).collect())
    }

    /// Deletes `name` (nothing if it does not exist).
    pub fn delete(&self, name: &str) {
        if let Err(e) = self.runtime.block_on(self.store.delete(&self.path(name))) {
            tracing::debug!("deleting {}: {e}", self.url(name));
        }
    }
}
