//! Checks APISIX keys with `validate.py`, the offline validator that mirrors
//! how the APISIX data plane reads etcd (APISIX 3.18's schemas and rules),
//! shipped in `testenv/apisix-schema/` so that every checkout runs the check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use etcd_client::GetOptions;

use crate::TestEnvError;

/// The result of one validator run.
#[derive(Debug)]
pub struct SchemaReport {
    pub passed: bool,
    /// The validator's output: `FAIL`/`WARN` lines and the `N passed, M failed` summary.
    pub output: String,
}

/// `$APISIX_SCHEMA_DIR`, else the copy shipped in `testenv/apisix-schema`.
fn schema_dir() -> PathBuf {
    match std::env::var_os("APISIX_SCHEMA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("apisix-schema"),
    }
}

/// Where `validate.py` lives.
pub fn validator_path() -> Result<PathBuf, TestEnvError> {
    let script = schema_dir().join("validate.py");
    if script.is_file() {
        Ok(script)
    } else {
        Err(TestEnvError::io(
            format!(
                "{} is missing (set APISIX_SCHEMA_DIR to a directory holding validate.py, core/ and plugins/)",
                script.display()
            ),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }
}

/// APISIX 3.18's saved Control API `/v1/schema` response (for the
/// operator's `--apisix-schema`): the copy the core crate ships.
pub fn control_api_schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/apisix-schema/control-api-3.18.0.json")
}

/// Keys per range read: one response must stay under the client's 4 MiB
/// gRPC message limit, which a single read of a 10,000-route store exceeds.
const PAGE_SIZE: i64 = 500;

/// Every key-value under `<prefix>/`, read page by page at one revision.
async fn read_prefix(
    client: &mut etcd_client::Client,
    prefix: &str,
) -> Result<Vec<etcd_client::KeyValue>, TestEnvError> {
    let first = format!("{}/", prefix.trim_end_matches('/'));
    let mut end = first.clone().into_bytes();
    // The prefix's range end: its last byte (`/`) plus one.
    *end.last_mut().expect("the prefix ends with '/'") += 1;
    let mut start = first.into_bytes();
    let mut revision = 0;
    let mut kvs = Vec::new();
    loop {
        let mut options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(PAGE_SIZE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let mut response = client.get(start.clone(), Some(options)).await?;
        if revision == 0 {
            revision = response.header().map_or(0, |header| header.revision());
        }
        let more = response.more();
        let page = response.take_kvs();
        let Some(last) = page.last() else { break };
        start = last.key().to_vec();
        start.push(0);
        kvs.extend(page);
        if !more {
            break;
        }
    }
    Ok(kvs)
}

/// Reads every key under `prefix` as a `{key: value}` dump.
pub async fn dump_prefix(
    client: &mut etcd_client::Client,
    prefix: &str,
) -> Result<BTreeMap<String, serde_json::Value>, TestEnvError> {
    let mut dump = BTreeMap::new();
    for kv in read_prefix(client, prefix).await? {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let raw = String::from_utf8_lossy(kv.value()).into_owned();
        let value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw));
        dump.insert(key, value);
    }
    Ok(dump)
}

/// Every key under `<prefix>/` with its value (the `create_time` and
/// `update_time` stamps removed, non-JSON values as `null`) and its mod
/// revision: what tests compare with a desired state.
pub async fn stored_objects(
    client: &mut etcd_client::Client,
    prefix: &str,
) -> Result<BTreeMap<String, (serde_json::Value, i64)>, TestEnvError> {
    Ok(read_prefix(client, prefix)
        .await?
        .iter()
        .map(|kv| {
            let mut value: serde_json::Value =
                serde_json::from_slice(kv.value()).unwrap_or(serde_json::Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.remove("create_time");
                map.remove("update_time");
            }
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                (value, kv.mod_revision()),
            )
        })
        .collect())
}

/// Runs the validator on `dump` (keys under `prefix`).
pub fn validate(
    dump: &BTreeMap<String, serde_json::Value>,
    prefix: &str,
) -> Result<SchemaReport, TestEnvError> {
    let script = validator_path()?;
    let file = tempfile::Builder::new()
        .prefix("apisix-dump-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| TestEnvError::io("creating a dump file", e))?;
    std::fs::write(
        file.path(),
        serde_json::to_vec_pretty(dump).expect("JSON values serialize"),
    )
    .map_err(|e| TestEnvError::io("writing a dump file", e))?;
    let output = Command::new("python3")
        .arg(&script)
        .arg(file.path())
        .arg("--prefix")
        .arg(prefix)
        .output()
        .map_err(|e| TestEnvError::io("running validate.py", e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => Ok(SchemaReport {
            passed: true,
            output: text,
        }),
        Some(1) => Ok(SchemaReport {
            passed: false,
            output: text,
        }),
        _ => Err(TestEnvError::io(
            format!("validate.py could not run ({}): {text}", output.status),
            std::io::Error::other("validator error"),
        )),
    }
}

/// Dumps `prefix` from etcd and panics with the validator's report when any
/// key fails; for tests.
pub async fn assert_prefix_valid(client: &mut etcd_client::Client, prefix: &str) {
    let dump = dump_prefix(client, prefix)
        .await
        .expect("reading the APISIX prefix");
    let report = validate(&dump, prefix).unwrap_or_else(|e| panic!("running validate.py: {e}"));
    assert!(
        report.passed,
        "APISIX keys under {prefix} fail validate.py:\n{}",
        report.output
    );
}
