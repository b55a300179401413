//! Multi-document YAML in and out, as JSON values.

use serde_json::Value;

use crate::TestEnvError;

/// The non-empty documents of a YAML stream.
pub fn parse_documents(text: &str, what: &str) -> Result<Vec<Value>, TestEnvError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| TestEnvError::Install(format!("{what} is not valid YAML: {e}")))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// One document; keys come out sorted, so the output is deterministic.
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("a JSON value serializes to YAML")
}
