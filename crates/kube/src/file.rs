//! `kubectl get … -o json` files: read offline into the same model the API source fills.

use std::path::Path;
use std::time::Duration;

use nodedoc_model::hostfile;

use crate::wire::{decode_list, decode_object, Decoded, WireList, WireObject};
use crate::KubeError;

/// The largest objects file read (a `kubectl get rs -A -o json` of 50,000 ReplicaSets is
/// about 200 MiB).
pub const MAX_OBJECTS_FILE_BYTES: u64 = 1 << 30;

/// One file's objects and what else it held.
#[derive(Debug)]
pub(crate) struct ObjectsFile {
    pub decoded: Decoded,
    pub bytes: u64,
}

/// Reads `path`: a `List` (`kubectl get deploy,rs -A -o json`), a typed list (`PodList`, as
/// `kubectl get --raw /api/v1/pods` prints it) or one object (`kubectl get pod P -o json`).
pub(crate) fn read(path: &Path) -> Result<ObjectsFile, KubeError> {
    let bytes = hostfile::read_regular(path, MAX_OBJECTS_FILE_BYTES, Duration::from_secs(10))
        .map_err(|e| KubeError::File {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
    let decoded = decode(&bytes).map_err(|why| KubeError::File {
        path: path.to_path_buf(),
        why,
    })?;
    Ok(ObjectsFile {
        decoded,
        bytes: bytes.len() as u64,
    })
}

/// Decodes the text of an objects file.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    // What the top level is, without building anything else.
    #[derive(serde::Deserialize)]
    struct Top {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        items: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        format: Option<String>,
    }
    let top: Top = serde_json::from_slice(bytes).map_err(|e| describe_json_error(&e))?;
    let mut decoded = Decoded::default();
    if top.items.is_some() {
        let list: WireList = serde_json::from_slice(bytes).map_err(|e| describe_json_error(&e))?;
        decode_list(list, &mut decoded);
    } else if let Some(kind) = top.kind.as_deref().filter(|k| !k.is_empty()) {
        let object: WireObject =
            serde_json::from_slice(bytes).map_err(|e| describe_json_error(&e))?;
        let api_version = object.api_version.clone().unwrap_or_default();
        decode_object(object, kind, &api_version, &mut decoded);
    } else if top.format.as_deref() == Some(nodedoc_model::SNAPSHOT_FORMAT) {
        return Err(
            "this is a nodedoc snapshot: give it with --from, not --kube-objects".to_string(),
        );
    } else {
        return Err(
            "not `kubectl get … -o json` output: neither a list (`items`) nor an object (`kind`)"
                .to_string(),
        );
    }
    Ok(decoded)
}

/// A JSON error with its line and column, and what kind of error it is.
fn describe_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "the JSON ends early (a truncated file?)",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON of an unexpected shape",
        serde_json::error::Category::Io => "cannot be read",
    };
    format!("line {} column {}: {what}: {e}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_objects_and_typed_lists_decode() {
        let list = br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"a"}}]}"#;
        assert_eq!(decode(list).unwrap().replica_sets.len(), 1);
        let typed = br#"{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"p"}}]}"#;
        assert_eq!(decode(typed).unwrap().pods.len(), 1);
        let one = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}"#;
        assert_eq!(decode(one).unwrap().deployments.len(), 1);
    }

    #[test]
    fn bad_input_says_where_and_what() {
        let err = decode(b"{\"items\": [").unwrap_err();
        assert!(
            err.starts_with("line 1 column 11: the JSON ends early"),
            "{err}"
        );
        let err = decode(b"{\"items\": 5}").unwrap_err();
        assert!(err.contains("unexpected shape"), "{err}");
        let err = decode(b"[1, 2]").unwrap_err();
        assert!(err.contains("unexpected shape"), "{err}");
        let err = decode(br#"{"format":"nodedoc-snapshot","version":1}"#).unwrap_err();
        assert!(err.contains("--from"), "{err}");
        let err = decode(br#"{"hello":"world"}"#).unwrap_err();
        assert!(err.starts_with("not `kubectl get"), "{err}");
    }
}
