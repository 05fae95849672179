//! Reading the mail Gatehouse wrote to its outbox folder: wait for the next message to an address, decode its
//! plain-text part, and pull out the code or link a test needs. Messages are real RFC 5322 files made by
//! lettre, so this also checks that they are well-formed enough to be read back.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

pub struct Outbox {
    dir: PathBuf,
    seen: Mutex<HashSet<PathBuf>>,
}

/// One message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    /// The header block, unfolded.
    pub headers: String,
    pub subject: String,
    pub to: String,
    /// The decoded text/plain part.
    pub text: String,
    /// The decoded text/html part.
    pub html: String,
}

impl Mail {
    /// The 6-digit code in the message.
    pub fn code(&self) -> String {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .find(|word| word.len() == 6)
            .unwrap_or_else(|| panic!("no 6-digit code in: {}", self.text))
            .to_owned()
    }

    /// The first link to Gatehouse in the message, as a path with its query (`/_gatehouse/...?token=...`).
    pub fn link_path(&self) -> String {
        let url = self
            .text
            .split_whitespace()
            .find(|word| word.starts_with("http://") && word.contains('?'))
            .unwrap_or_else(|| panic!("no link in: {}", self.text));
        let url = reqwest::Url::parse(url).unwrap();
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }

    /// The value of a query parameter of the link.
    pub fn link_param(&self, name: &str) -> String {
        let path = self.link_path();
        let url = reqwest::Url::parse(&format!("http://x{path}")).unwrap();
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).expect("link has the parameter")
    }
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, seen: Mutex::new(HashSet::new()) }
    }

    /// Every message written so far (read or not), oldest first.
    pub fn all(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files.iter().map(parse).collect()
    }

    /// Messages to `to` (optionally of template `kind`) not returned before.
    fn unseen(&self, to: &str, kind: Option<&str>) -> Option<Mail> {
        let mut seen = self.seen.lock().unwrap();
        for mail in self.all() {
            let name = mail.file.file_name().unwrap().to_string_lossy().into_owned();
            if seen.contains(&mail.file) || !mail.to.contains(to) || kind.is_some_and(|k| !name.contains(k)) {
                continue;
            }
            seen.insert(mail.file.clone());
            return Some(mail);
        }
        None
    }

    /// Waits (up to 10 s: delivery is in the background) for the next message of template `kind` to `to`.
    pub async fn next(&self, to: &str, kind: &str) -> Mail {
        let started = Instant::now();
        loop {
            if let Some(mail) = self.unseen(to, Some(kind)) {
                return mail;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no '{kind}' mail to {to} arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that no message to `to` arrives within a short while (mail is delivered in the background, so
    /// "nothing yet" needs a moment to mean "nothing").
    pub async fn expect_none(&self, to: &str) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(mail) = self.unseen(to, None) {
            panic!("unexpected mail to {to}: {} ({})", mail.subject, mail.file.display());
        }
    }
}

fn parse(file: &PathBuf) -> Mail {
    let raw = std::fs::read_to_string(file).unwrap();
    let (head, _) = raw.split_once("\r\n\r\n").expect("a header block");
    let headers = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_owned).unwrap_or_default()
    };
    Mail {
        file: file.clone(),
        subject: header("Subject"),
        to: header("To"),
        text: part(&raw, "text/plain"),
        html: part(&raw, "text/html"),
        headers,
    }
}

/// The decoded body of the part with this content type.
fn part(raw: &str, content_type: &str) -> String {
    let start = raw.find(&format!("Content-Type: {content_type}")).unwrap_or_else(|| panic!("no {content_type} part"));
    let rest = &raw[start..];
    let (part_head, body) = rest.split_once("\r\n\r\n").unwrap();
    let body = body.split("\r\n--").next().unwrap();
    if part_head.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
    } else if part_head.contains("Content-Transfer-Encoding: quoted-printable") {
        decode_quoted_printable(body)
    } else {
        body.replace("\r\n", "\n")
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("\r\n", "\n");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'='
            && let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
