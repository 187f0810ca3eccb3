//! Sigma rules (the field's shared rule format, SigmaHQ) judged on what
//! daisi observes.
//!
//! `[rules] paths` names rule files or directories; every rule is loaded
//! at the node's prepare step and classified: **loaded** when daisi has
//! its log source and every field it uses, else **unsupported** with the
//! reason (another product, a category daisi has no events of, a field
//! daisi does not fill). `daisi rules check PATH…` prints the same
//! without running a node.
//!
//! Mapped today: `process_creation` (Linux) from live capture's
//! processes, each judged once when it is first seen: `Image`,
//! `CommandLine`, `ParentImage`, `ParentCommandLine`, `User`,
//! `ProcessId`, `ParentProcessId`. A rule's alert (module `sigma`) names
//! the rule (`rule.id`, `rule.name`, `rule.author`, `rule.license`,
//! `rule.ruleset`), its level as severity, the ATT&CK tactics and
//! techniques of its tags (`threat.*`), and joins the process-tree
//! incident of its process like any finding.

pub mod sigma;

pub use sigma::{Category, Loaded, RuleSet, Unsupported};
