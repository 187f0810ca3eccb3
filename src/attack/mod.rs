//! MITRE ATT&CK for daisi's own detectors: the tactics and techniques
//! each rule indicates (ECS `threat.*`). Sigma rules carry theirs in their
//! tags (`crate::rules::sigma::threat_of`). Technique names and tactics
//! come from MITRE's data (`techniques.rs`, written by
//! `scripts/attack-table.sh`).

use crate::messages::ThreatFields;

#[rustfmt::skip]
mod techniques;
pub use techniques::ATTACK_VERSION;

/// An ATT&CK Enterprise technique (or sub-technique) by id, e.g.
/// `T1053.003`: its name and tactics (short names, e.g. `persistence`).
pub fn technique(id: &str) -> Option<(&'static str, &'static [&'static str])> {
    let t = techniques::TECHNIQUES;
    t.binary_search_by(|(k, ..)| (*k).cmp(id))
        .ok()
        .map(|i| (t[i].1, t[i].2))
}

/// A tactic's display name from its short name: `privilege-escalation` →
/// `Privilege Escalation`, `command-and-control` → `Command and Control`.
pub fn tactic_title(short: &str) -> String {
    short
        .split('-')
        .enumerate()
        .map(|(i, w)| match w {
            "and" if i > 0 => "and".to_string(),
            w => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `threat.*` from tactics and technique ids: each technique named from
/// MITRE's data (empty when the id is not an ATT&CK technique), tactics
/// normalised to ATT&CK's short names (`privilege_escalation` →
/// `privilege-escalation`), each once.
pub fn threat<'a>(
    tactics: impl IntoIterator<Item = &'a str>,
    techniques: impl IntoIterator<Item = &'a str>,
) -> ThreatFields {
    let mut t = ThreatFields::default();
    for tactic in tactics {
        let n = tactic.replace('_', "-").to_ascii_lowercase();
        if !t.tactic.name.contains(&n) {
            t.tactic.name.push(n);
        }
    }
    for id in techniques {
        let id = id.to_ascii_uppercase();
        if t.technique.id.contains(&id) {
            continue;
        }
        t.technique
            .name
            .push(technique(&id).map_or(String::new(), |(n, _)| n.to_string()));
        t.technique.id.push(id);
    }
    t
}

/// `(rule name, tactics, techniques)`; a rule not here indicates none in
/// particular (a new log shape, a syscall model's score).
const TABLE: &[(&str, &[&str], &[&str])] = &[
    ("baseline.new_child", &["execution"], &["T1059"]),
    ("baseline.new_user", &["privilege-escalation"], &["T1078"]),
    (
        "baseline.sensitive_read",
        &["credential-access"],
        &["T1003.008"],
    ),
    (
        "baseline.sensitive_write",
        &["persistence"],
        &["T1098.004", "T1053.003"],
    ),
    ("baseline.new_peer", &["command-and-control"], &["T1071"]),
    (
        "baseline.new_listener",
        &["command-and-control"],
        &["T1571"],
    ),
    (
        "baseline.privilege_change",
        &["privilege-escalation"],
        &["T1548"],
    ),
    ("baseline.memory_file", &["defense-evasion"], &["T1620"]),
    (
        "baseline.tracing",
        &["defense-evasion", "privilege-escalation"],
        &["T1055.008"],
    ),
    ("baseline.module_load", &["persistence"], &["T1547.006"]),
    ("baseline.mount", &["defense-evasion"], &["T1564"]),
    ("baseline.removal", &["defense-evasion"], &["T1070.004"]),
    (
        "log.ssh_brute_force",
        &["credential-access"],
        &["T1110.001"],
    ),
    ("log.db_brute_force", &["credential-access"], &["T1110.001"]),
    (
        "log.login_after_failures",
        &["credential-access", "initial-access"],
        &["T1110", "T1078"],
    ),
    ("log.login_guessing", &["credential-access"], &["T1110"]),
    (
        "log.privilege_escalation",
        &["privilege-escalation"],
        &["T1548.003"],
    ),
    ("log.account_change", &["persistence"], &["T1136.001"]),
    ("log.web_scanning", &["reconnaissance"], &["T1595.003"]),
    ("log.web_injection", &["initial-access"], &["T1190"]),
    (
        "log.web_traversal",
        &["initial-access", "discovery"],
        &["T1190", "T1083"],
    ),
    ("network.port_scan", &["discovery"], &["T1046"]),
    ("network.host_sweep", &["discovery"], &["T1018"]),
    ("network.connection_flood", &["impact"], &["T1498"]),
    ("network.web_probing", &["reconnaissance"], &["T1595.003"]),
    (
        "network.ssh_guessing",
        &["credential-access"],
        &["T1110.001"],
    ),
    (
        "network.dns_tunnelling",
        &["command-and-control", "exfiltration"],
        &["T1071.004", "T1048"],
    ),
    ("network.slow_connections", &["impact"], &["T1499.002"]),
    ("network.login_guessing", &["credential-access"], &["T1110"]),
];

/// The tactics and techniques a rule of daisi's indicates.
pub fn of_rule(name: &str) -> Option<ThreatFields> {
    let (_, tactics, techniques) = TABLE.iter().find(|(n, ..)| *n == name)?;
    Some(threat(tactics.iter().copied(), techniques.iter().copied()))
}

/// Whether an alert's `threat.*` matches a filter: `technique` by id or
/// parent id (`T1003` takes `T1003.008`), `tactic` by short name
/// (`credential-access`, `credential_access` or `Credential Access`);
/// both case-insensitive, an empty filter takes everything.
pub fn matches(threat: Option<&ThreatFields>, technique: &str, tactic: &str) -> bool {
    let technique = technique.trim().to_ascii_uppercase();
    let tactic = tactic.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    let Some(t) = threat else {
        return technique.is_empty() && tactic.is_empty();
    };
    (technique.is_empty()
        || t.technique.id.iter().any(|id| {
            let id = id.to_ascii_uppercase();
            id == technique || id.starts_with(&format!("{technique}."))
        }))
        && (tactic.is_empty() || t.tactic.name.contains(&tactic))
}

/// `ATT&CK T1003.008, T1059` for one-line summaries (none without a
/// technique).
pub fn label(threat: Option<&ThreatFields>) -> Option<String> {
    let t = threat.filter(|t| !t.technique.id.is_empty())?;
    Some(format!("ATT&CK {}", t.technique.id.join(", ")))
}

/// Everything two detections indicate together (an incident's).
pub fn merge(into: &mut Option<ThreatFields>, other: Option<&ThreatFields>) {
    let Some(o) = other else { return };
    let t = into.get_or_insert_with(ThreatFields::default);
    for n in &o.tactic.name {
        if !t.tactic.name.contains(n) {
            t.tactic.name.push(n.clone());
        }
    }
    for (i, id) in o.technique.id.iter().enumerate() {
        if !t.technique.id.contains(id) {
            t.technique.id.push(id.clone());
            let name = o.technique.name.get(i).cloned();
            t.technique.name.push(
                name.unwrap_or_else(|| technique(id).map_or(String::new(), |(n, _)| n.to_string())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule daisi raises that indicates a technique is in the table,
    /// with a well-formed technique id and a tactic; merging keeps each
    /// once.
    #[test]
    fn daisis_rules_name_their_techniques() {
        for (name, tactics, techniques) in TABLE {
            assert!(!tactics.is_empty(), "{name}");
            for t in *techniques {
                assert!(
                    t.starts_with('T') && t[1..5].chars().all(|c| c.is_ascii_digit()),
                    "{name}: {t}"
                );
            }
        }
        let mut m = of_rule("log.ssh_brute_force");
        merge(&mut m, of_rule("log.login_after_failures").as_ref());
        let m = m.unwrap();
        assert_eq!(m.technique.id, ["T1110.001", "T1110", "T1078"]);
        assert_eq!(m.tactic.name, ["credential-access", "initial-access"]);
        assert!(of_rule("log.new_template").is_none());
        assert_eq!(
            m.technique.name,
            ["Password Guessing", "Brute Force", "Valid Accounts"]
        );
    }

    /// The table from MITRE's data: every technique daisi's rules name is
    /// in it; lookups by id; tactic titles as ATT&CK writes them.
    #[test]
    fn techniques_are_named_from_attacks_data() {
        for (name, _, techniques) in TABLE {
            for t in *techniques {
                assert!(
                    technique(t).is_some(),
                    "{name}: {t} is not in ATT&CK {ATTACK_VERSION}"
                );
            }
        }
        let (name, tactics) = technique("T1053.003").unwrap();
        assert_eq!(name, "Cron");
        assert!(tactics.contains(&"persistence"));
        assert!(technique("T9999").is_none());
        assert!(techniques::TECHNIQUES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(tactic_title("command-and-control"), "Command and Control");
        assert_eq!(tactic_title("privilege-escalation"), "Privilege Escalation");
        let t = threat(["privilege_escalation"], ["t1548.003", "T1548.003"]);
        assert_eq!(t.tactic.name, ["privilege-escalation"]);
        assert_eq!(t.technique.id, ["T1548.003"]);
        assert_eq!(t.technique.name, ["Sudo and Sudo Caching"]);
        assert!(matches(Some(&t), "t1548", ""));
        assert!(matches(Some(&t), "T1548.003", "Privilege Escalation"));
        assert!(!matches(Some(&t), "T154", ""));
        assert!(!matches(Some(&t), "", "persistence"));
        assert!(!matches(None, "T1548", ""));
        assert!(matches(None, "", ""));
        assert_eq!(label(Some(&t)).as_deref(), Some("ATT&CK T1548.003"));
    }
}
