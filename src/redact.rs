//! Secrets out of what leaves a host: process arguments, log lines, HTTP
//! request targets are rewritten on the collector before anything is sent.
//!
//! Configured patterns (`[syscall_source] redact`), matched without regard
//! to case:
//!
//! - `NAME=*`: the value of `NAME=...`, as a word of its own
//!   (`--password=hunter2`) or as a URL query parameter
//!   (`https://h/p?token=abc`), becomes `<redacted>`;
//! - `NAME` (no `=`): the word after `NAME` (`--password hunter2`).
//!
//! And always:
//!
//! - a URL's user info (`scheme://user:password@host`);
//! - environment-style assignments whose name says secret
//!   (`PGPASSWORD=…`, `MYSQL_PWD=…`, `GITHUB_TOKEN=…`, `AWS_SECRET_ACCESS_KEY=…`)
//!   and long options likewise (`--http-password=…`, `--api-key=…`);
//! - HTTP headers that carry credentials (`Authorization:`,
//!   `Proxy-Authorization:`, `X-Api-Key:`, `Cookie:`): the rest of the
//!   argument, or the next word;
//! - programs' attached short options: `mysql`/`mariadb`/`mysqldump`/
//!   `mysqladmin -pSECRET`, `sshpass -pSECRET` and `sshpass -p SECRET`,
//!   `curl -u user:pass` (`-uuser:pass`, `--user user:pass`): the
//!   password.
//!
//! A word's program is the command's (`argv[0]`), or the last program
//! named before it inside an argument (a shell's `-c` script, sudo's
//! `COMMAND=`).

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Name endings that say an assignment's value is a secret.
const SECRET_NAMES: [&str; 8] = [
    "password",
    "passwd",
    "_pwd",
    "token",
    "secret",
    "apikey",
    "api_key",
    "access_key",
];

/// Headers whose value is a credential.
const SECRET_HEADERS: [&str; 4] = [
    "authorization:",
    "proxy-authorization:",
    "x-api-key:",
    "cookie:",
];

/// Programs whose `-p` attached (or, for sshpass, next) is a password.
const DASH_P: [&str; 5] = ["mysql", "mariadb", "mysqldump", "mysqladmin", "sshpass"];
/// Programs whose `-u`/`--user` value is `user:password`.
const DASH_U: [&str; 1] = ["curl"];

/// The rules (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    /// `name=` patterns, lowercase.
    values: Vec<String>,
    /// Words whose next word is a secret, lowercase.
    next: Vec<String>,
}

/// What the next word is, given the ones before it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    Plain,
    /// A secret as a whole.
    Secret,
    /// `user:password`: the password is the secret.
    UserPassword,
    /// The rest of the argument is a header's value.
    RestOfArgument,
}

impl Redaction {
    pub fn new(patterns: &[String]) -> Self {
        let mut r = Redaction::default();
        for p in patterns {
            let p = p.to_lowercase();
            match p.strip_suffix('*') {
                Some(value_of) if value_of.ends_with('=') => r.values.push(value_of.to_string()),
                _ => r.next.push(p),
            }
        }
        r
    }

    /// A command's arguments with every secret replaced; true when one
    /// was. The rules apply to the words inside an argument too.
    pub fn apply(&self, args: &mut [String]) -> bool {
        let mut program = args.first().map(|a0| basename(a0)).unwrap_or_default();
        let mut next = Next::Plain;
        let mut changed = false;
        for a in args.iter_mut().skip(1) {
            changed |= self.argument(a, &mut program, &mut next);
        }
        changed
    }

    /// A line of text (a log line, an HTTP request target): its words, as
    /// the arguments of no program in particular. True when one changed.
    pub fn text(&self, line: &mut String) -> bool {
        let mut program = String::new();
        let mut next = Next::Plain;
        self.argument(line, &mut program, &mut next)
    }

    fn argument(&self, a: &mut String, program: &mut String, next: &mut Next) -> bool {
        if !a.contains(' ') {
            let mut w = std::mem::take(a);
            let changed = self.word(&mut w, program, next);
            *a = w;
            if *next == Next::RestOfArgument {
                *next = Next::Secret;
            }
            return changed;
        }
        let mut words: Vec<String> = a.split(' ').map(String::from).collect();
        let mut changed = false;
        for w in &mut words {
            changed |= self.word(w, program, next);
        }
        if *next == Next::RestOfArgument {
            *next = Next::Plain;
        }
        if changed {
            *a = words.join(" ");
        }
        changed
    }

    /// One word; `next` says what the word after it is.
    fn word(&self, w: &mut String, program: &mut String, next: &mut Next) -> bool {
        if w.is_empty() {
            return false; // a run of spaces
        }
        match *next {
            Next::RestOfArgument => {
                *w = REDACTED.into();
                return true;
            }
            Next::Secret => {
                *next = Next::Plain;
                *w = REDACTED.into();
                return true;
            }
            Next::UserPassword => {
                *next = Next::Plain;
                return user_password(w);
            }
            Next::Plain => {}
        }
        let lower = w.to_lowercase();
        if SECRET_HEADERS.contains(&lower.as_str()) {
            *next = Next::RestOfArgument;
            return false;
        }
        if self.next.contains(&lower) {
            *next = Next::Secret;
            return false;
        }
        // A program named inside an argument: its options follow.
        let base = basename(w);
        if DASH_P.contains(&base.as_str()) || DASH_U.contains(&base.as_str()) {
            *program = base;
            return false;
        }
        if DASH_P.contains(&program.as_str()) {
            if lower == "-p" && program == "sshpass" {
                *next = Next::Secret;
                return false;
            }
            if w.len() > 2 && w.starts_with("-p") {
                *w = format!("-p{REDACTED}");
                return true;
            }
        }
        if DASH_U.contains(&program.as_str()) {
            if lower == "-u" || lower == "--user" {
                *next = Next::UserPassword;
                return false;
            }
            if let Some(v) = w.strip_prefix("-u").or_else(|| w.strip_prefix("--user=")) {
                let prefix = &w[..w.len() - v.len()];
                let mut v = v.to_string();
                if user_password(&mut v) {
                    *w = format!("{prefix}{v}");
                    return true;
                }
            }
        }
        match self.values_of(w) {
            Some(r) => {
                *w = r;
                true
            }
            None => false,
        }
    }

    /// The word with the values of `name=` patterns, secret-named
    /// assignments and a URL's password redacted.
    fn values_of(&self, a: &str) -> Option<String> {
        let mut out = url_password(a);
        let text = out.clone().unwrap_or_else(|| a.to_string());
        // Assignments: NAME=value, --name=value.
        if let Some(eq) = text.find('=') {
            let name = text[..eq].trim_start_matches('-').to_lowercase();
            let plain = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let secret = SECRET_NAMES
                .iter()
                .any(|s| name.ends_with(s) || name.ends_with(&s.replace('_', "-")));
            if plain && secret && eq + 1 < text.len() && !text[eq + 1..].starts_with(REDACTED) {
                return Some(format!("{}{REDACTED}", &text[..=eq]));
            }
        }
        for name in &self.values {
            let text = out.as_deref().unwrap_or(a);
            let lower_now = text.to_lowercase();
            let starts = lower_now.starts_with(name.as_str());
            let in_query = ["?", "&"]
                .iter()
                .find_map(|sep| lower_now.find(&format!("{sep}{name}")).map(|i| i + 1));
            let at = if starts { Some(0) } else { in_query };
            if let Some(at) = at {
                let value_start = at + name.len();
                let value_end = text[value_start..]
                    .find(['&', '#', ' '])
                    .map_or(text.len(), |e| value_start + e);
                if value_end > value_start && &text[value_start..value_end] != REDACTED {
                    out = Some(format!(
                        "{}{REDACTED}{}",
                        &text[..value_start],
                        &text[value_end..]
                    ));
                }
            }
        }
        out
    }
}

/// A path's last component (a program's name).
fn basename(w: &str) -> String {
    w.rsplit('/').next().unwrap_or(w).to_lowercase()
}

/// `user:password` with the password redacted; false when there is none.
fn user_password(w: &mut String) -> bool {
    match w.split_once(':') {
        Some((user, pass)) if !pass.is_empty() && pass != REDACTED => {
            *w = format!("{user}:{REDACTED}");
            true
        }
        _ => false,
    }
}

/// `scheme://user:password@rest` with the password redacted.
fn url_password(a: &str) -> Option<String> {
    let scheme_end = a.find("://")? + 3;
    let rest = &a[scheme_end..];
    let at = rest.find('@')?;
    let creds = &rest[..at];
    if creds.contains('/') {
        return None;
    }
    let colon = creds.find(':')?;
    if &creds[colon + 1..] == REDACTED {
        return None;
    }
    Some(format!(
        "{}{}:{REDACTED}{}",
        &a[..scheme_end],
        &creds[..colon],
        &rest[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn shipped() -> Redaction {
        Redaction::new(&[
            "--password=*".into(),
            "--password".into(),
            "--token=*".into(),
            "--token".into(),
            "password=*".into(),
            "token=*".into(),
        ])
    }

    #[test]
    fn secrets_in_arguments_are_redacted() {
        let r = Redaction::new(&["--password=*".into(), "--password".into(), "token=*".into()]);
        let mut a = args(&[
            "mysql",
            "--password=hunter2",
            "--password",
            "hunter3",
            "curl",
            "https://api.example/v1?user=bob&token=abc123&x=1",
            "postgres://app:s3cret@db:5432/app",
            "--user=bob",
        ]);
        assert!(r.apply(&mut a));
        assert_eq!(
            a,
            args(&[
                "mysql",
                "--password=<redacted>",
                "--password",
                "<redacted>",
                "curl",
                "https://api.example/v1?user=bob&token=<redacted>&x=1",
                "postgres://app:<redacted>@db:5432/app",
                "--user=bob",
            ])
        );
        // Inside one argument: a shell's script.
        let mut script = args(&[
            "sh",
            "-c",
            "read l; mysql --password  s3 --password=x db; true",
        ]);
        assert!(r.apply(&mut script));
        assert_eq!(
            script[2],
            "read l; mysql --password  <redacted> --password=<redacted> db; true"
        );
        let mut clean = args(&["ls", "-l", "/var/www"]);
        assert!(!r.apply(&mut clean));
        assert_eq!(clean, args(&["ls", "-l", "/var/www"]));
    }

    /// Every form a secret takes on a command line, with the shipped
    /// patterns: none of the secrets is left, the rest is.
    #[test]
    fn every_form_of_secret_is_redacted() {
        let r = shipped();
        let cases: &[(&[&str], &str)] = &[
            (&["mysql", "-uroot", "-pS3CRET1", "db"], "S3CRET1"),
            (&["/usr/bin/mariadb", "-pS3CRET2"], "S3CRET2"),
            (&["sshpass", "-pS3CRET3", "ssh", "h"], "S3CRET3"),
            (&["sshpass", "-p", "S3CRET4", "ssh", "h"], "S3CRET4"),
            (&["curl", "-u", "alice:S3CRET5", "https://h/"], "S3CRET5"),
            (&["curl", "-ualice:S3CRET6", "https://h/"], "S3CRET6"),
            (
                &["curl", "--user", "alice:S3CRET7", "https://h/"],
                "S3CRET7",
            ),
            (
                &["curl", "-H", "Authorization: Bearer S3CRET8", "https://h/"],
                "S3CRET8",
            ),
            (
                &["curl", "-H", "X-Api-Key: S3CRET9", "https://h/"],
                "S3CRET9",
            ),
            (&["curl", "-H", "authorization:", "S3CRET10"], "S3CRET10"),
            (&["env", "PGPASSWORD=S3CRET11", "psql"], "S3CRET11"),
            (&["env", "MYSQL_PWD=S3CRET12", "mysql"], "S3CRET12"),
            (&["env", "GITHUB_TOKEN=S3CRET13", "gh"], "S3CRET13"),
            (
                &["env", "AWS_SECRET_ACCESS_KEY=S3CRET14", "aws"],
                "S3CRET14",
            ),
            (
                &["wget", "--http-password=S3CRET15", "https://h/"],
                "S3CRET15",
            ),
            (&["tool", "--PASSWORD=S3CRET16"], "S3CRET16"),
            (&["tool", "--Password", "S3CRET17"], "S3CRET17"),
            (&["curl", "https://h/p?Token=S3CRET18&x=1"], "S3CRET18"),
            (
                &["git", "clone", "https://bob:S3CRET19@git.example/r"],
                "S3CRET19",
            ),
            (
                &[
                    "sh",
                    "-c",
                    "PGPASSWORD=S3CRET20 psql -h db; mysql -pS3CRET21 x",
                ],
                "S3CRET2",
            ),
        ];
        for (argv, secret) in cases {
            let mut a = args(argv);
            assert!(r.apply(&mut a), "{argv:?}");
            let joined = a.join(" ");
            assert!(!joined.contains(secret), "{argv:?} -> {joined}");
            assert!(joined.contains(REDACTED), "{joined}");
        }
        // Not secrets: left as they are.
        for argv in [
            &["mysql", "-p", "db"][..],
            &["ls", "-p", "/tmp"],
            &["curl", "-u", "alice", "https://h/"],
            &["grep", "-i", "password", "f"],
        ] {
            let mut a = args(argv);
            assert!(!r.apply(&mut a), "{argv:?} -> {a:?}");
        }
    }

    /// A log line and an HTTP request target: the same rules.
    #[test]
    fn log_lines_and_request_targets_are_redacted() {
        let r = shipped();
        let mut sudo = "sudo:  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/mysql -uroot -pS3CRET db".to_string();
        assert!(r.text(&mut sudo));
        assert!(!sudo.contains("S3CRET"), "{sudo}");
        assert!(
            sudo.contains("PWD=/home/alice"),
            "the working directory is no secret: {sudo}"
        );
        let mut target = "/login?user=bob&password=S3CRET&next=/".to_string();
        assert!(r.text(&mut target));
        assert_eq!(target, "/login?user=bob&password=<redacted>&next=/");
        let mut access =
            r#"10.0.0.1 - - [07/Dec/2026:10:00:00 +0000] "GET /api?token=S3CRET HTTP/1.1" 200 12"#
                .to_string();
        assert!(r.text(&mut access));
        assert!(!access.contains("S3CRET"), "{access}");
    }
}
