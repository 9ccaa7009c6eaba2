//! The session document `exec --install-document` creates: NonInteractiveCommands with
//! `separateOutputStream`, the one setting that makes the agent send stderr as StdErr (11) and
//! the command's status as ExitCode (12) (§12). The content is fixed text, so its SHA-256 is
//! what DescribeDocument's `Hash` reports for an installed copy: equal hashes mean "already
//! installed", different ones mean another document has the name.

use sha2::{Digest, Sha256};

/// The name `--install-document` uses when given none.
pub const DEFAULT_NAME: &str = "SessionProxy-Exec";

/// The document's JSON content, byte for byte as sent to CreateDocument.
pub const CONTENT: &str = r#"{
  "schemaVersion": "1.0",
  "description": "session-proxy exec: runs a command with separate stdout and stderr and reports its exit code",
  "sessionType": "NonInteractiveCommands",
  "parameters": {
    "command": {
      "type": "String",
      "description": "The command to run"
    }
  },
  "properties": {
    "linux": {
      "commands": "{{ command }}",
      "separateOutputStream": true,
      "runAsEnabled": false
    }
  }
}
"#;

/// Lowercase hex SHA-256 of [`CONTENT`] (DescribeDocument's default `HashType`).
pub fn content_hash() -> String {
    Sha256::digest(CONTENT.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A session document name or ARN as SSM accepts them (3–128 of `A-Za-z0-9_.-`, plus `:`
/// and `/` in ARNs).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a session document name (3 to 128 letters, digits, _ . - or an ARN)",
            crate::printable::Printable(name).to_string()
        ))
    }
}

/// What the user needs to know after installing `name` in `region`.
pub fn usage(name: &str) -> String {
    format!(
        "IAM: installing needs ssm:CreateDocument and ssm:DescribeDocument on document/{name}; \
         users of it need ssm:StartSession on arn:aws:ssm:<region>:<account>:document/{name} \
         (and on the instances).\n\
         Use it with `session-proxy exec --document {name} <target> -- <command…>`, or set \
         `exec: {{document: {name}}}` in the config file."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_asks_for_separate_output_for_the_command_parameter() {
        let v: serde_json::Value = serde_json::from_str(CONTENT).unwrap();
        assert_eq!(v["sessionType"], "NonInteractiveCommands");
        assert_eq!(v["parameters"]["command"]["type"], "String");
        let linux = &v["properties"]["linux"];
        assert_eq!(linux["commands"], "{{ command }}");
        assert_eq!(linux["separateOutputStream"], true);
        assert_eq!(linux["runAsEnabled"], false);
        assert_eq!(content_hash().len(), 64);
    }

    #[test]
    fn the_config_reads_exec_document_and_checks_the_name() {
        let c = crate::config::from_yaml_str("exec:\n  document: SessionProxy-Exec\n", "t.yaml");
        assert_eq!(
            c.unwrap().exec_document.as_deref(),
            Some("SessionProxy-Exec")
        );
        let e = crate::config::from_yaml_str("exec:\n  document: 'no good'\n", "t.yaml");
        assert!(e.unwrap_err().to_string().contains("exec.document"));
        assert!(crate::config::from_yaml_str("exec:\n  docs: x\n", "t.yaml").is_err());
    }

    #[test]
    fn document_names_follow_ssms_rules() {
        for ok in [
            "SessionProxy-Exec",
            "AWS-StartNonInteractiveCommand",
            "arn:aws:ssm:eu-west-1:123456789012:document/X_1.2",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "ab", "has space", "semi;colon", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
