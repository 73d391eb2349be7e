//! The secret values one invocation holds, found and removed wherever they turn up, in every
//! encoding the host can recognize.
//!
//! A value is looked for raw, reversed, in hex, in standard and URL-safe base64 (whole, and at
//! each of the three alignments it can take inside a longer base64 text), percent-encoded (as a
//! URL component, every byte, and as a form field) and JSON-escaped, all without regard to ASCII
//! case. (A value longer than 1 KiB, such as a PEM key, is looked for raw, JSON-escaped,
//! percent-encoded as a URL component and in base64 at every alignment; one longer than 16 KiB raw
//! and in base64.) What is found is replaced by `[REDACTED]` in what operators read (results, logs,
//! the record) and in what a server sends back before the connector reads it; found in a request
//! the connector builds, it says the connector holds a value it should not (see `host/http.rs`).
//!
//! Every occurrence of every form is found, overlapping ones included, and the union of what they
//! cover is replaced: a value the connector made the host hold (a string of a token answer it
//! chose, say) that overlaps the start of a real secret cannot leave the rest of it in the clear.
//! Forms are lower-cased and searched for in the lower-cased text. A few (one secret's, a token's)
//! in a short text are searched for one by one with memchr's `memmem`, which costs nothing to set
//! up; more, or in a text over 64 KiB (a large answer), with one Aho-Corasick automaton, in time linear in
//! the text and the matches (building it costs tens of microseconds, once per value held at most). A text
//! matching more than once per byte, or in more separate places than [`MAX_SPANS`], is not one to
//! read: it is withheld, or redacted whole. The forms' total size is bounded, and so are the
//! automaton's memory (~12 bytes per byte of form) and the time to build it.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use memchr::memmem;

use super::{Binding, SecretValue};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Shorter values are not looked for: they would redact ordinary text (a real credential is
/// longer).
const MIN_VALUE_LEN: usize = 4;
/// An encoded form shorter than this is not looked for (too likely to occur by chance).
const MIN_FORM_LEN: usize = 8;
/// Values up to this long are looked for in every encoding.
const MAX_FULLY_ENCODED_LEN: usize = 1024;
/// Values up to this long are looked for raw, JSON-escaped, percent-encoded as a URL component
/// and in base64 at every alignment; longer ones raw and in base64.
const MAX_ENCODED_LEN: usize = 16 * 1024;
/// The most bytes of forms one invocation's redactor holds: about 2.5 MiB of automaton, built in
/// tens of milliseconds. A connector needs a few KiB (its secret, a token or two).
pub const MAX_FORM_BYTES: usize = 192 * 1024;
/// Up to this many forms are searched for one by one in a text up to [`MAX_TEXT_ONE_BY_ONE`]
/// long; more, or in a longer text, with an automaton.
const MAX_FORMS_ONE_BY_ONE: usize = 48;
const MAX_TEXT_ONE_BY_ONE: usize = 64 * 1024;
/// The separate places a text may hold values in before it is not read at all (real text holds
/// a secret a few times; one that holds it everywhere was made to be slow, or large).
pub(crate) const MAX_SPANS: usize = 64 * 1024;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The host made or read it: a resolved secret, a basic-auth pair, a JWT it signed.
    Host,
    /// An answer carried it (`send-for-token`): a server's, which the connector may have chosen
    /// by having the server reflect it.
    Answer,
}

/// One value the redactor knows.
#[derive(Clone, Debug)]
struct Known {
    /// What it was registered as (the value, or the form a basic-auth pair or JWT goes by), to
    /// recognize it when it is added again.
    key: String,
    binding: Option<Binding>,
    source: Source,
}

/// The secret values an invocation holds and the forms they are looked for in.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    known: Vec<Known>,
    /// Every form, lower-cased.
    forms: Vec<String>,
    /// For each form, the index in `known` of its value.
    owners: Vec<usize>,
    form_bytes: usize,
    /// One `memmem` finder per form, built when first needed after a change.
    finders: OnceLock<Vec<memmem::Finder<'static>>>,
    /// An automaton of every form, built when first needed after a change.
    automaton: OnceLock<AhoCorasick>,
}

/// Why a value was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The redactor holds as many values as it may.
    TooManyValues,
    /// The values' forms would take more than the redactor may hold.
    TooLarge,
}

/// What a search of a text found.
enum Spans {
    /// The byte ranges that hold a value (disjoint, in order), and the values found.
    Found(Vec<(usize, usize)>, Vec<usize>),
    /// The text matched more often than [`MATCHES_PER_BYTE`] allows: not searched to the end.
    TooMany,
}

impl Redactor {
    /// Adds a secret value (without a binding), however many are held already.
    pub fn add(&mut self, value: &SecretValue) {
        let _ = self.try_add(value, None, Source::Host, usize::MAX);
    }

    /// Adds a secret value, its binding and where it came from, unless that would make more than
    /// `max_values` values or more than [`MAX_FORM_BYTES`] of forms. A value already known is
    /// never refused (its binding is kept, or taken when it had none).
    pub fn try_add(
        &mut self,
        value: &SecretValue,
        binding: Option<&Binding>,
        source: Source,
        max_values: usize,
    ) -> Result<(), Refused> {
        let v = value.expose();
        if v.len() < MIN_VALUE_LEN {
            return Ok(());
        }
        self.push(v.to_string(), binding, source, forms(v), max_values)
    }

    /// Adds a basic-auth pair, whose base64 form is what goes on the wire (the secret itself is
    /// added on its own).
    pub fn add_basic(&mut self, username: &str, value: &SecretValue) {
        let _ = self.try_add_basic(username, value, None, usize::MAX);
    }

    /// [`Redactor::add_basic`], bounded like [`Redactor::try_add`].
    pub fn try_add_basic(
        &mut self,
        username: &str,
        value: &SecretValue,
        binding: Option<&Binding>,
        max_values: usize,
    ) -> Result<(), Refused> {
        let pair = format!("{username}:{}", value.expose());
        let mut forms = base64_forms(pair.as_bytes());
        forms.retain(|f| f.len() >= MIN_FORM_LEN);
        self.push(format!("basic {pair}"), binding, Source::Host, forms, max_values)
    }

    /// Adds a JWT the host signed: its signature is what only the key could make (the header and
    /// claims are the connector's own text), so that is what is looked for.
    pub fn try_add_jwt(
        &mut self,
        token: &SecretValue,
        binding: Option<&Binding>,
        max_values: usize,
    ) -> Result<(), Refused> {
        let signature = token.expose().rsplit('.').next().unwrap_or_default();
        if signature.len() < MIN_VALUE_LEN {
            return self.try_add(token, binding, Source::Host, max_values);
        }
        self.push(signature.to_string(), binding, Source::Host, forms(signature), max_values)
    }

    fn push(
        &mut self,
        key: String,
        binding: Option<&Binding>,
        source: Source,
        mut forms: Vec<String>,
        max_values: usize,
    ) -> Result<(), Refused> {
        if let Some(known) = self.known.iter_mut().find(|k| k.key == key) {
            if known.binding.is_none() {
                known.binding = binding.cloned();
            }
            if source == Source::Host {
                known.source = Source::Host;
            }
            return Ok(());
        }
        if self.known.len() >= max_values {
            return Err(Refused::TooManyValues);
        }
        for form in &mut forms {
            form.make_ascii_lowercase();
        }
        forms.sort();
        forms.dedup();
        let bytes: usize = forms.iter().map(String::len).sum();
        if self.form_bytes + bytes > MAX_FORM_BYTES {
            return Err(Refused::TooLarge);
        }
        let owner = self.known.len();
        self.known.push(Known { key, binding: binding.cloned(), source });
        self.owners.extend(std::iter::repeat_n(owner, forms.len()));
        self.forms.extend(forms);
        self.form_bytes += bytes;
        self.finders = OnceLock::new();
        self.automaton = OnceLock::new();
        Ok(())
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The text with every value replaced by `[REDACTED]` (a text that matches too often to be
    /// searched, whole).
    pub fn redact(&self, text: &str) -> String {
        self.redact_from(text, None)
    }

    /// The text with every value the host made or read itself replaced (never one an answer
    /// carried, which the connector may have chosen): where a connector's own choice must not hide
    /// anything, such as the origins it contacted.
    pub fn redact_host_values(&self, text: &str) -> String {
        self.redact_from(text, Some(Source::Host))
    }

    fn redact_from(&self, text: &str, only: Option<Source>) -> String {
        match self.spans(text.as_bytes(), only) {
            Spans::TooMany => REDACTED.to_string(),
            Spans::Found(spans, _) if spans.is_empty() => text.to_string(),
            // Forms are whole UTF-8 strings and UTF-8 is self-synchronizing, so a span never
            // splits a character: this is still UTF-8.
            Spans::Found(spans, _) => String::from_utf8(replaced(text.as_bytes(), &spans))
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// Replaces every value in `bytes` by `[REDACTED]`, or, when they match too often to be
    /// searched, empties them; whether anything was found.
    pub fn scrub(&self, bytes: &mut Vec<u8>) -> bool {
        match self.spans(bytes, None) {
            Spans::TooMany => {
                bytes.clear();
                true
            }
            Spans::Found(spans, _) if spans.is_empty() => false,
            Spans::Found(spans, _) => {
                *bytes = replaced(bytes, &spans);
                true
            }
        }
    }

    /// The values found in `bytes` (their indexes, each once, in the order added); every value,
    /// when they match too often to be searched.
    pub fn found(&self, bytes: &[u8]) -> Vec<usize> {
        match self.spans(bytes, None) {
            Spans::TooMany => (0..self.known.len()).collect(),
            Spans::Found(_, values) => values,
        }
    }

    /// The binding of the value at `index` (see [`Redactor::found`]).
    pub fn binding(&self, index: usize) -> Option<&Binding> {
        self.known.get(index).and_then(|k| k.binding.as_ref())
    }

    /// Every occurrence of every form (of values from `only`, when given), overlapping ones
    /// included, as the union of the ranges they cover.
    fn spans(&self, bytes: &[u8], only: Option<Source>) -> Spans {
        if self.forms.is_empty() {
            return Spans::Found(vec![], vec![]);
        }
        // Few forms in a short text: each on its own, at no cost to set up. Many forms, or a long
        // text (a whole answer), would cost a pass per form: one automaton pass instead.
        let one_by_one = self.forms.len() <= MAX_FORMS_ONE_BY_ONE && bytes.len() <= MAX_TEXT_ONE_BY_ONE;
        // Lower-casing ASCII keeps every byte where it was, so matches are positions in `bytes`.
        let text: Cow<'_, [u8]> = if bytes.iter().any(u8::is_ascii_uppercase) {
            Cow::Owned(bytes.to_ascii_lowercase())
        } else {
            Cow::Borrowed(bytes)
        };
        let mut union = Union::new(self.known.len(), 64 + bytes.len());
        let wanted = |form: usize| {
            let owner = self.owners[form];
            only.is_none_or(|source| self.known[owner].source == source).then_some(owner)
        };
        let complete = if !one_by_one {
            let automaton = self.automaton.get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&self.forms)
                    .expect("the forms are bounded far below the automaton's limits")
            });
            automaton.find_overlapping_iter(&*text).all(|m| match wanted(m.pattern().as_usize()) {
                Some(owner) => union.add(m.start(), m.end(), owner),
                None => union.count(),
            })
        } else {
            let finders = self
                .finders
                .get_or_init(|| self.forms.iter().map(|f| memmem::Finder::new(f.as_bytes()).into_owned()).collect());
            // Each form's occurrences in order of their start (the next one searched from one
            // byte after the last, so overlapping occurrences count), merged across forms.
            let next =
                |form: usize, from: usize| finders[form].find(text.get(from..)?).map(|at| Reverse((from + at, form)));
            let mut heads: BinaryHeap<Reverse<(usize, usize)>> =
                (0..finders.len()).filter_map(|form| next(form, 0)).collect();
            let mut complete = true;
            while let Some(Reverse((start, form))) = heads.pop() {
                let kept = match wanted(form) {
                    Some(owner) => union.add(start, start + self.forms[form].len(), owner),
                    None => union.count(),
                };
                if !kept {
                    complete = false;
                    break;
                }
                heads.extend(next(form, start + 1));
            }
            complete
        };
        if !complete {
            return Spans::TooMany;
        }
        Spans::Found(
            union.spans,
            union.values.iter().enumerate().filter(|(_, found)| **found).map(|(i, _)| i).collect(),
        )
    }
}

/// The union of the ranges matches cover, built as they come (in the order they end, or start),
/// within a budget of matches and of separate spans.
struct Union {
    spans: Vec<(usize, usize)>,
    values: Vec<bool>,
    matches_left: usize,
}

impl Union {
    fn new(values: usize, max_matches: usize) -> Self {
        Self { spans: Vec::new(), values: vec![false; values], matches_left: max_matches }
    }

    /// Counts a match that is not kept; false when the budget is spent.
    fn count(&mut self) -> bool {
        self.matches_left = self.matches_left.saturating_sub(1);
        self.matches_left > 0
    }

    /// Adds the match `start..end` of value `owner`; false when a budget is spent.
    fn add(&mut self, mut start: usize, mut end: usize, owner: usize) -> bool {
        if !self.count() {
            return false;
        }
        self.values[owner] = true;
        // A match may reach back over spans before it, or end before the last one does.
        while let Some(&(s, e)) = self.spans.last() {
            if e < start || s > end {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            self.spans.pop();
        }
        self.spans.push((start, end));
        self.spans.len() <= MAX_SPANS
    }
}

/// `bytes` with each span replaced by `[REDACTED]`.
fn replaced(bytes: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Every form a value is looked for in (see the module's documentation).
fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![value.to_string()];
    if bytes.len() > MAX_ENCODED_LEN {
        out.push(STANDARD_NO_PAD.encode(bytes));
        out.push(URL_SAFE_NO_PAD.encode(bytes));
        return out;
    }
    let mut derived = base64_forms(bytes);
    derived.push(percent_encoded(bytes, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b), false));
    let json = serde_json::to_string(value).expect("a string serializes");
    let json = json[1..json.len() - 1].to_string();
    if json.contains('/') {
        derived.push(json.replace('/', "\\/"));
    }
    derived.push(json);
    if bytes.len() <= MAX_FULLY_ENCODED_LEN {
        derived.push(value.chars().rev().collect::<String>());
        derived.push(hex::encode(bytes));
        derived.push(percent_encoded(bytes, |_| false, false));
        derived.push(percent_encoded(bytes, |b| b.is_ascii_alphanumeric() || b"-._*".contains(&b), true));
    }
    out.extend(derived.into_iter().filter(|f| f.len() >= MIN_FORM_LEN && f != value));
    out
}

/// Standard and URL-safe base64, whole and at each alignment inside a longer text: the
/// characters that depend on the value's bytes only, when they start 0, 1 or 2 bytes into a
/// group of three.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut out = vec![];
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        out.push(engine.encode(bytes));
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let text = engine.encode(&shifted);
            // Character i covers bits [6i, 6i + 6); it is the value's alone when those bits lie
            // in bytes offset..offset + len.
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + bytes.len()) / 6;
            if end > first {
                out.push(text[first..end].to_string());
            }
        }
    }
    out
}

/// Percent-encoding: bytes `keep` accepts stay, others are `%XX`; `plus_for_space` writes a
/// space as `+` (a form field).
fn percent_encoded(bytes: &[u8], keep: impl Fn(u8) -> bool, plus_for_space: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if plus_for_space && b == b' ' {
            out.push('+');
        } else if keep(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(values: &[&str]) -> Redactor {
        let mut r = Redactor::default();
        for v in values {
            r.add(&SecretValue::new(v.to_string()));
        }
        r
    }

    #[test]
    fn every_encoding_of_a_value_is_redacted() {
        let secret = "Canary/5ecr3t+value 9f8e=&x";
        let r = redactor(&[secret]);
        let b = secret.as_bytes();
        let mut encodings = vec![
            secret.to_string(),
            secret.to_ascii_lowercase(),
            secret.to_ascii_uppercase(),
            secret.chars().rev().collect(),
            hex::encode(b),
            hex::encode_upper(b),
            base64::engine::general_purpose::STANDARD.encode(b),
            base64::engine::general_purpose::URL_SAFE.encode(b),
            STANDARD_NO_PAD.encode(b),
            URL_SAFE_NO_PAD.encode(b),
            url::form_urlencoded::byte_serialize(b).collect(),
            percent_encoded(b, |b| b.is_ascii_alphanumeric(), false),
            percent_encoded(b, |b| b.is_ascii_alphanumeric(), false).to_ascii_lowercase(),
            serde_json::to_string(secret).unwrap(),
        ];
        // Inside a longer base64 text, at each alignment.
        for prefix in ["", "a", "ab", "abc"] {
            let text = format!("{{\"echo\":\"{prefix}{secret}\",\"more\":1}}");
            encodings.push(STANDARD_NO_PAD.encode(text.as_bytes()));
            encodings.push(URL_SAFE_NO_PAD.encode(text.as_bytes()));
        }
        for encoded in &encodings {
            let text = format!("before {encoded} after");
            let out = r.redact(&text);
            assert!(out.contains(REDACTED), "{encoded} was not recognized: {out}");
            assert!(!out.to_ascii_lowercase().contains(&secret.to_ascii_lowercase()), "{out}");
            assert_eq!(r.found(text.as_bytes()), vec![0], "{encoded}");
        }
        assert!(r.found(b"nothing of it here, 9f8e=&x only").is_empty());
    }

    #[test]
    fn basic_pairs_and_jwts_are_recognized_by_what_only_the_host_knows() {
        let v = SecretValue::new("canary-123456".into());
        let mut r = Redactor::default();
        r.add(&v);
        r.add_basic("robot", &v);
        let basic = base64::engine::general_purpose::STANDARD.encode("robot:canary-123456");
        let out = r.redact(&format!("a canary-123456 c Basic {basic}"));
        assert_eq!(out, format!("a {REDACTED} c Basic {REDACTED}=="), "{out}");
        let jwt = SecretValue::new("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJlLW9mLXRoZS1rZXk".into());
        r.try_add_jwt(&jwt, None, 64).unwrap();
        let out = r.redact(&format!("Bearer {}", jwt.expose()));
        assert_eq!(out, format!("Bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiIxMjMifQ.{REDACTED}"));
    }

    #[test]
    fn values_are_bounded_in_number_and_in_bytes() {
        let mut r = Redactor::default();
        for i in 0..3 {
            r.try_add(&SecretValue::new(format!("value-number-{i}")), None, Source::Host, 3).unwrap();
        }
        assert_eq!(
            r.try_add(&SecretValue::new("one-too-many".into()), None, Source::Host, 3),
            Err(Refused::TooManyValues)
        );
        // A value already known is not a new one.
        r.try_add(&SecretValue::new("value-number-1".into()), None, Source::Host, 3).unwrap();
        let mut r = Redactor::default();
        let long = |i: usize| SecretValue::new(format!("{i:04}{}", "k".repeat(24 * 1024)));
        let mut added = 0;
        while r.try_add(&long(added), None, Source::Host, 64).is_ok() {
            added += 1;
        }
        assert_eq!(r.try_add(&long(added), None, Source::Host, 64), Err(Refused::TooLarge));
        assert!(r.form_bytes <= MAX_FORM_BYTES && added >= 2, "{added}");
        // A long value is still found raw and in base64.
        let text = format!("x {} y", STANDARD_NO_PAD.encode(long(0).expose()));
        assert_eq!(r.redact(&text), format!("x {REDACTED} y"));
    }

    #[test]
    fn values_a_connector_chose_cannot_cut_a_secret_in_half() {
        // The connector had an echo endpoint's answer register strings of its choice that end
        // where the secret begins; every occurrence counts, so the secret is still covered whole.
        let secret = SecretValue::new("s3cr3t-token-value-1f2e".into());
        let mut r = Redactor::default();
        r.try_add(&secret, None, Source::Host, 64).unwrap();
        for first in ["er s", "r s3", "Bearer s3cr"] {
            r.try_add(&SecretValue::new(first.into()), None, Source::Answer, 64).unwrap();
        }
        let echoed = r#"{"headers":{"Authorization":"Bearer s3cr3t-token-value-1f2e"}}"#;
        assert_eq!(r.redact(echoed), r#"{"headers":{"Authorization":"[REDACTED]"}}"#);
        assert!(r.finders.get().is_some() && r.automaton.get().is_none());
        // The same with enough values held to search with the automaton.
        for i in 0..8 {
            r.try_add(&SecretValue::new(format!("unrelated-value-{i:04}")), None, Source::Host, 64).unwrap();
        }
        assert!(r.forms.len() > MAX_FORMS_ONE_BY_ONE);
        assert_eq!(r.redact(echoed), r#"{"headers":{"Authorization":"[REDACTED]"}}"#);
        assert!(r.automaton.get().is_some());
        // Only what the host made or read redacts an origin: the connector's own strings do not.
        let mut r = Redactor::default();
        r.try_add(&SecretValue::new("exfil.example".into()), None, Source::Answer, 64).unwrap();
        r.try_add(&secret, None, Source::Host, 64).unwrap();
        assert_eq!(r.redact_host_values("https://exfil.example:443"), "https://exfil.example:443");
        assert_eq!(r.redact("https://exfil.example:443"), "https://[REDACTED]:443");
        assert_eq!(r.redact_host_values("https://s3cr3t-token-value-1f2e.example"), "https://[REDACTED].example");
    }

    #[test]
    fn a_text_made_to_match_everywhere_is_not_searched_to_its_end() {
        let mut r = Redactor::default();
        for n in 4..40 {
            r.try_add(&SecretValue::new("a".repeat(n)), None, Source::Answer, 64).unwrap();
        }
        let mut body = vec![b'a'; 1 << 20];
        assert!(r.scrub(&mut body));
        assert!(body.is_empty(), "withheld whole");
        assert_eq!(r.redact(&"a".repeat(4096)), REDACTED);
        assert_eq!(r.found(&vec![b'a'; 4096]).len(), 36, "every value, when it cannot tell which");
        // A few occurrences are searched as usual.
        assert_eq!(r.redact("x aaaa y"), format!("x {REDACTED} y"));
        // The same with few enough forms to search them one by one.
        let mut r = Redactor::default();
        for n in 4..10 {
            r.try_add(&SecretValue::new("a".repeat(n)), None, Source::Answer, 64).unwrap();
        }
        assert!(r.forms.len() <= MAX_FORMS_ONE_BY_ONE, "{}", r.forms.len());
        assert_eq!(r.redact(&"a".repeat(4096)), REDACTED);
        assert!(r.finders.get().is_some() && r.automaton.get().is_none());
        assert_eq!(r.redact("x aaaa y"), format!("x {REDACTED} y"));
    }

    #[test]
    fn short_values_and_ordinary_text_are_left_alone() {
        let r = redactor(&["abc", "canary-123456"]);
        assert_eq!(r.redact("abc abcdef"), "abc abcdef");
        assert_eq!(r.redact("status 200, all good"), "status 200, all good");
        let mut body = b"binary \xff\x00 canary-123456 \xfe".to_vec();
        assert!(r.scrub(&mut body));
        assert_eq!(body, b"binary \xff\x00 [REDACTED] \xfe");
        let mut clean = b"nothing".to_vec();
        assert!(!r.scrub(&mut clean));
        assert!(Redactor::default().found(b"anything").is_empty());
    }

    #[test]
    fn the_automaton_of_the_most_a_redactor_holds_is_bounded() {
        let mut r = Redactor::default();
        let mut i = 0;
        // Each added value searched for at once, so that every one costs a build.
        while r
            .try_add(&SecretValue::new(format!("{i:08}-{}", "x".repeat(1000))), None, Source::Host, usize::MAX)
            .is_ok()
        {
            assert!(r.found(b"no value here").is_empty());
            i += 1;
        }
        assert!(r.found(b"build it").is_empty());
        let automaton = r.automaton.get().expect("many forms are searched at once");
        let memory = automaton.memory_usage();
        assert!(memory < 4 << 20, "{memory} bytes for {} bytes of forms", r.form_bytes);
    }
}
