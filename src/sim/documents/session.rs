//! Session documents of the shell kinds (schemaVersion 1.0, `sessionType` Standard_Stream,
//! InteractiveCommands or NonInteractiveCommands), read the way the service reads them: the
//! `parameters` a StartSession may give (with their defaults), and the `properties` and
//! `inputs` the agent gets once every `{{ name }}` is replaced by its parameter's value.
//!
//! AWS's own shell documents are kept here as their JSON content and read by the same code as
//! a document created with CreateDocument, so both behave alike.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::{CommandPlan, Plan, Run, Separators};
use crate::sim::aws_error::ApiError;

/// What StartSession runs when it names no document.
pub const SHELL_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The shell documents every account has, by name, with their content (AWS's, trimmed of
/// what the simulator does not read: descriptions and the Windows/macOS properties).
pub const BUILTIN: [(&str, &str); 3] = [
    (
        SHELL_DOCUMENT,
        r#"{"schemaVersion":"1.0","description":"Document to hold regional settings for Session Manager","sessionType":"Standard_Stream","inputs":{"s3BucketName":"","s3KeyPrefix":"","s3EncryptionEnabled":true,"cloudWatchLogGroupName":"","cloudWatchEncryptionEnabled":true,"cloudWatchStreamingEnabled":false,"kmsKeyId":"","runAsEnabled":false,"runAsDefaultUser":"","idleSessionTimeout":"","maxSessionDuration":"","shellProfile":{"windows":"","linux":""}}}"#,
    ),
    (
        "AWS-StartInteractiveCommand",
        r#"{"schemaVersion":"1.0","description":"Document to run single interactive command on an instance","sessionType":"InteractiveCommands","parameters":{"command":{"type":"String","description":"The command to run on the instance"}},"properties":{"linux":{"commands":"{{command}}","runAsElevated":false}}}"#,
    ),
    (
        "AWS-StartNonInteractiveCommand",
        r#"{"schemaVersion":"1.0","description":"Document to run single non interactive command on an instance","sessionType":"NonInteractiveCommands","parameters":{"command":{"type":"String","description":"The command to run on the instance"}},"properties":{"linux":{"commands":"{{command}}","runAsElevated":false}}}"#,
    ),
];

/// The separator prefixes the agent accepts (`^[0-9a-zA-Z\r\n_:-]{0,30}$`).
const MAX_PREFIX: usize = 30;

/// A parsed shell-kind Session document.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDocument {
    pub session_type: String,
    /// Parameter name → default value (`None`: the parameter is required).
    parameters: BTreeMap<String, Option<String>>,
    properties: Value,
    inputs: Value,
}

impl SessionDocument {
    /// Reads a document's content (JSON or YAML). The error says what is wrong with it, for
    /// `InvalidDocumentContent`.
    pub fn parse(content: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(content)
            .or_else(|_| serde_yaml_ng::from_str(content))
            .map_err(|e| format!("the content is neither JSON nor YAML: {e}"))?;
        if doc.get("schemaVersion").and_then(Value::as_str) != Some("1.0") {
            return Err("a Session document needs schemaVersion \"1.0\"".into());
        }
        let session_type = match doc.get("sessionType").and_then(Value::as_str) {
            Some(t @ ("Standard_Stream" | "InteractiveCommands" | "NonInteractiveCommands")) => t,
            Some("Port") => return Err("the simulator runs no custom Port documents".into()),
            _ => return Err("sessionType must be Standard_Stream, InteractiveCommands, NonInteractiveCommands or Port".into()),
        };
        let parameters = parameters(doc.get("parameters"))?;
        let parsed = Self {
            session_type: session_type.to_owned(),
            parameters,
            properties: doc.get("properties").cloned().unwrap_or(Value::Null),
            inputs: doc.get("inputs").cloned().unwrap_or(Value::Null),
        };
        // A command document must name its command; check with every parameter filled in.
        let filled = parsed
            .parameters
            .keys()
            .map(|k| (k.clone(), vec!["x".to_owned()]))
            .collect();
        parsed
            .plan(&filled)
            .map(|_| parsed.clone())
            .map_err(|e| e.message)
    }

    /// The declared parameters and their defaults, by name.
    pub fn parameters(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// What a StartSession with `params` runs. Errors are the service's `InvalidParameters`.
    pub fn plan(&self, params: &HashMap<String, Vec<String>>) -> Result<Plan, ApiError> {
        let values = self.values(params)?;
        let properties = substitute(&self.properties, &values);
        let inputs = substitute(&self.inputs, &values);
        let linux = properties.get("linux").unwrap_or(&Value::Null);
        let command = linux.get("commands").and_then(commands_text);
        let run = match (self.session_type.as_str(), command) {
            ("Standard_Stream", _) => Run::Shell {
                profile: inputs
                    .pointer("/shellProfile/linux")
                    .and_then(Value::as_str)
                    .filter(|p| !p.trim().is_empty())
                    .map(str::to_owned),
            },
            ("InteractiveCommands", Some(command)) => Run::Interactive { command },
            ("NonInteractiveCommands", Some(command)) => Run::Command(CommandPlan {
                command,
                separate: separators(linux)?,
            }),
            (t, None) => {
                return Err(ApiError::invalid_parameters(format!(
                    "A {t} document needs properties.linux.commands"
                )))
            }
            (t, Some(_)) => {
                return Err(ApiError::invalid_parameters(format!(
                    "sessionType {t} is not one the simulator runs"
                )))
            }
        };
        // The real agent's HandshakeRequest carries no properties for NonInteractiveCommands.
        let handshake_properties = match run {
            Run::Command(_) => Value::Null,
            _ => properties,
        };
        Ok(Plan {
            session_type: self.session_type.clone(),
            properties: handshake_properties,
            run,
        })
    }

    /// Every declared parameter's value: the one given, else its default; unknown names, a
    /// list of values, or a required parameter left out are `InvalidParameters`.
    fn values(
        &self,
        params: &HashMap<String, Vec<String>>,
    ) -> Result<HashMap<String, String>, ApiError> {
        let mut names: Vec<&String> = params.keys().collect();
        names.sort();
        if let Some(bad) = names
            .iter()
            .find(|k| !self.parameters.contains_key(k.as_str()))
        {
            let known: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
            return Err(ApiError::invalid_parameters(format!(
                "The document does not take parameter {bad}; it takes {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let mut out = HashMap::new();
        for (name, default) in &self.parameters {
            let value = match (params.get(name).map(Vec::as_slice), default) {
                (Some([v]), _) => v.clone(),
                (Some(_), _) => {
                    let msg = format!("Parameter {name} takes exactly one value");
                    return Err(ApiError::invalid_parameters(msg));
                }
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    let msg = format!("The document requires parameter {name}");
                    return Err(ApiError::invalid_parameters(msg));
                }
            };
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}

/// The declared parameters and their defaults (a non-string default is kept as its JSON text).
fn parameters(v: Option<&Value>) -> Result<BTreeMap<String, Option<String>>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = v.as_object() else {
        return Err("parameters must be a map of parameter definitions".into());
    };
    let mut out = BTreeMap::new();
    for (name, def) in map {
        if !def.is_object() {
            return Err(format!(
                "parameter {name} must be a map (type, default, ...)"
            ));
        }
        let default = def.get("default").map(|d| match d {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        out.insert(name.clone(), default);
    }
    Ok(out)
}

/// `properties.linux.commands`: a string, or a list of lines joined with newlines.
fn commands_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Array(lines) => {
            let lines: Option<Vec<&str>> = lines.iter().map(Value::as_str).collect();
            lines.map(|l| l.join("\n")).filter(|s| !s.trim().is_empty())
        }
        _ => None,
    }
}

/// `separateOutputStream` (a boolean, or "true" after substitution) and its prefixes.
fn separators(linux: &Value) -> Result<Option<Separators>, ApiError> {
    let on = match linux.get("separateOutputStream") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !on {
        return Ok(None);
    }
    let prefix = |key: &str| -> Result<String, ApiError> {
        let p = linux.get(key).and_then(Value::as_str).unwrap_or_default();
        let ok = p.len() <= MAX_PREFIX
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"\r\n_:-".contains(&b));
        match ok {
            true => Ok(p.to_owned()),
            false => Err(ApiError::invalid_parameters(format!(
                "{key} must match ^[0-9a-zA-Z\\r\\n_:-]{{0,30}}$"
            ))),
        }
    };
    Ok(Some(Separators {
        stdout_prefix: prefix("stdOutSeparatorPrefix")?,
        stderr_prefix: prefix("stdErrSeparatorPrefix")?,
    }))
}

/// `v` with every `{{ name }}` in its strings replaced by the parameter's value (a boolean
/// property given as `"{{ separate }}"` therefore reads "true"/"false", which
/// [`separators`] accepts).
fn substitute(v: &Value, values: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => json!(replace_placeholders(s, values)),
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, values)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn replace_placeholders(s: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = after.find("}}") else {
            out.push_str(after);
            return out;
        };
        let name = after.get(2..end).unwrap_or_default().trim();
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(after.get(..end + 2).unwrap_or_default()),
        }
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The built-in document named `name`, parsed.
pub fn builtin(name: &str) -> Option<SessionDocument> {
    let (_, content) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    SessionDocument::parse(content).ok()
}
