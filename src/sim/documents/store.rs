//! The account's session documents: AWS's shell documents and those made with CreateDocument,
//! as DescribeDocument and GetDocument describe them (botocore's `DocumentDescription` shape).
//! Only `Session` documents are stored, and only shell kinds run (see [`super::session`]).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::session::{SessionDocument, BUILTIN};
use crate::sim::aws_error::{kind, ApiError};

/// Documents the simulator keeps at most (the account quota a runaway test hits).
pub const MAX_DOCUMENTS: usize = 500;
/// The model's limit on `Content`.
pub const MAX_CONTENT: usize = 64 * 1024;

/// CreateDocument input after wire-level validation.
#[derive(Debug, Clone, Default)]
pub struct CreateDocument {
    pub name: String,
    pub content: String,
    /// `Session` (anything else is refused); the model's default is `Command`.
    pub document_type: Option<String>,
    /// `JSON` (default) or `YAML`.
    pub document_format: Option<String>,
}

/// One stored document.
#[derive(Debug, Clone)]
struct Stored {
    doc: SessionDocument,
    content: String,
    format: String,
    owner: &'static str,
    created: f64,
}

/// The documents of the simulated account.
#[derive(Debug, Default)]
pub struct DocumentStore {
    custom: BTreeMap<String, Stored>,
}

impl DocumentStore {
    /// A created document's session meaning, for StartSession.
    pub fn session_doc(&self, name: &str) -> Option<SessionDocument> {
        self.custom.get(name).map(|s| s.doc.clone())
    }

    /// CreateDocument: the `DocumentDescription` of the new document.
    pub fn create(&mut self, req: CreateDocument) -> Result<Value, ApiError> {
        let doc_type = req.document_type.as_deref().unwrap_or("Command");
        if doc_type != "Session" {
            let msg = format!("The simulator stores Session documents only, not {doc_type}; set DocumentType Session");
            return Err(ApiError::new(kind::INVALID_DOCUMENT_TYPE, msg));
        }
        let format = req.document_format.as_deref().unwrap_or("JSON");
        if !["JSON", "YAML"].contains(&format) {
            let msg = format!(
                "DocumentFormat {format} is not valid for a Session document; use JSON or YAML"
            );
            return Err(ApiError::new(kind::INVALID_DOCUMENT_CONTENT, msg));
        }
        if self.custom.contains_key(&req.name) || builtin(&req.name).is_some() {
            let msg = "Document with same name already exists.";
            return Err(ApiError::new(kind::DOCUMENT_ALREADY_EXISTS, msg));
        }
        if self.custom.len() >= MAX_DOCUMENTS {
            let msg = format!("the simulator keeps {MAX_DOCUMENTS} documents at most");
            return Err(ApiError::new(kind::DOCUMENT_LIMIT_EXCEEDED, msg));
        }
        let doc = SessionDocument::parse(&req.content)
            .map_err(|why| ApiError::new(kind::INVALID_DOCUMENT_CONTENT, why))?;
        let stored = Stored {
            doc,
            content: req.content,
            format: format.to_owned(),
            owner: "123456789012",
            created: now(),
        };
        let description = describe(&req.name, &stored);
        self.custom.insert(req.name, stored);
        Ok(description)
    }

    /// DescribeDocument: the document's `DocumentDescription`.
    pub fn describe(&self, name: &str) -> Result<Value, ApiError> {
        self.find(name).map(|s| describe(name, &s))
    }

    /// GetDocument: the document with its content.
    pub fn get(&self, name: &str) -> Result<Value, ApiError> {
        let s = self.find(name)?;
        Ok(json!({
            "Name": name,
            "CreatedDate": s.created,
            "DocumentVersion": "1",
            "Status": "Active",
            "Content": s.content,
            "DocumentType": "Session",
            "DocumentFormat": s.format,
        }))
    }

    fn find(&self, name: &str) -> Result<Stored, ApiError> {
        self.custom
            .get(name)
            .cloned()
            .or_else(|| builtin(name))
            .ok_or_else(|| {
                let msg = format!("Document {name} does not exist. Create it with CreateDocument, or check its name and Region.");
                ApiError::new(kind::INVALID_DOCUMENT, msg)
            })
    }
}

/// AWS's shell documents, as the account sees them (owner Amazon).
fn builtin(name: &str) -> Option<Stored> {
    let (_, content) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    Some(Stored {
        doc: SessionDocument::parse(content).ok()?,
        content: (*content).to_owned(),
        format: "JSON".to_owned(),
        owner: "Amazon",
        created: 0.0,
    })
}

fn describe(name: &str, s: &Stored) -> Value {
    let hash = hex(&Sha256::digest(s.content.as_bytes()));
    let parameters: Vec<Value> = s
        .doc
        .parameters()
        .map(|(name, default)| {
            let mut p = json!({ "Name": name, "Type": "String" });
            if let (Some(m), Some(d)) = (p.as_object_mut(), default) {
                m.insert("DefaultValue".to_owned(), json!(d));
            }
            p
        })
        .collect();
    json!({
        "Hash": hash,
        "HashType": "Sha256",
        "Name": name,
        "Owner": s.owner,
        "CreatedDate": s.created,
        "Status": "Active",
        "DocumentVersion": "1",
        "Parameters": parameters,
        "PlatformTypes": ["Windows", "Linux", "MacOS"],
        "DocumentType": "Session",
        "SchemaVersion": "1.0",
        "LatestVersion": "1",
        "DefaultVersion": "1",
        "DocumentFormat": s.format,
        "Tags": [],
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Epoch seconds, the JSON 1.1 timestamp form.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}
