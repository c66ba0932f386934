//! Message signatures: an error message with its variable parts replaced by
//! placeholders, so that `user 48213 not found` and `user 7 not found` are counted as
//! one error. One pass over the message's first line (a stack trace's header stands for
//! the trace) replaces, where a word starts:
//!
//! | what | becomes |
//! |---|---|
//! | a quoted value, `"..."`, `'...'` or `` `...` `` | `<str>` |
//! | a UUID | `<uuid>` |
//! | a date or time of day, ISO style (`2026-11-24T10:00:00Z`, `10:00:00.5`) | `<time>` |
//! | an e-mail address | `<email>` |
//! | `0x` hex, or a word of 8 or more hex digits with digits and letters | `<hex>` |
//! | a word of 16 or more letters, digits and `_` with a digit (ULIDs, tokens) | `<id>` |
//! | a number, with its decimals or dotted parts (`3.5`, `10.0.3.17`) | `<num>` |
//!
//! and inside a word, any run of digits except one digit right after a letter, which
//! names things rather than counts them (`s3`, `v1`, `http2`, `utf8`, `ipv4`), so
//! `ORD12345` and `u_77` become `ORD<num>` and `u_<num>`. A list of one placeholder
//! (`[1, 2, 3]`) becomes one (`[<num>]`), whitespace runs become one space, and a
//! signature is cut at `MAX_CHARS` characters.

/// The longest signature kept, in characters; longer ones end with `…`.
pub const MAX_CHARS: usize = 200;

/// The signature of a message.
pub fn signature(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let bytes = line.as_bytes();
    let mut out = Signature::default();
    let mut at = 0;
    while at < bytes.len() && out.chars < MAX_CHARS {
        let starts_word = at == 0 || !is_word(bytes[at - 1]);
        let found = if starts_word {
            variable_at(bytes, at)
        } else {
            digits_inside_word(bytes, at)
        };
        if let Some((end, placeholder)) = found {
            out.placeholder(placeholder);
            at = end;
            continue;
        }
        let width = utf8_width(bytes[at]);
        let text = &line[at..at + width];
        if text.chars().all(char::is_whitespace) {
            out.space();
        } else {
            out.text(text);
        }
        at += width;
    }
    out.finish(at < bytes.len())
}

/// The signature being written.
#[derive(Default)]
struct Signature {
    text: String,
    chars: usize,
    pending_space: bool,
}

impl Signature {
    fn text(&mut self, text: &str) {
        if std::mem::take(&mut self.pending_space) {
            self.text.push(' ');
            self.chars += 1;
        }
        self.text.push_str(text);
        self.chars += text.chars().count();
    }

    fn space(&mut self) {
        self.pending_space = !self.text.is_empty();
    }

    /// Writes a placeholder, unless it continues a list of the same placeholder.
    fn placeholder(&mut self, placeholder: &str) {
        let listed = self
            .text
            .strip_suffix(',')
            .filter(|before| before.ends_with(placeholder));
        if let Some(before) = listed {
            let kept = before.len();
            self.text.truncate(kept);
            self.chars -= 1;
            self.pending_space = false;
            return;
        }
        self.text(placeholder);
    }

    fn finish(mut self, cut: bool) -> String {
        if cut {
            self.text.push('…');
        }
        self.text
    }
}

/// A variable part starting at a word's start: where it ends and its placeholder.
fn variable_at(bytes: &[u8], at: usize) -> Option<(usize, &'static str)> {
    let first = bytes[at];
    if matches!(first, b'"' | b'\'' | b'`') {
        return quoted(bytes, at).map(|end| (end, "<str>"));
    }
    if !first.is_ascii_alphanumeric() {
        return None;
    }
    let word_end = end_of(bytes, at, is_word);
    let word = &bytes[at..word_end];
    let ends_word = |end: usize| end == bytes.len() || !is_word(bytes[end]);
    if let Some(end) = uuid(bytes, at).filter(|&end| ends_word(end)) {
        return Some((end, "<uuid>"));
    }
    if let Some(end) = time(bytes, at).filter(|&end| ends_word(end)) {
        return Some((end, "<time>"));
    }
    if let Some(end) = email(bytes, at) {
        return Some((end, "<email>"));
    }
    if word.len() > 2
        && word[0] == b'0'
        && matches!(word[1], b'x' | b'X')
        && word[2..].iter().all(u8::is_ascii_hexdigit)
    {
        return Some((word_end, "<hex>"));
    }
    let has_digit = word.iter().any(u8::is_ascii_digit);
    let has_letter = word.iter().any(u8::is_ascii_alphabetic);
    if word.len() >= 8 && has_digit && has_letter && word.iter().all(u8::is_ascii_hexdigit) {
        return Some((word_end, "<hex>"));
    }
    if word.len() >= 16 && has_digit && has_letter {
        return Some((word_end, "<id>"));
    }
    if first.is_ascii_digit() {
        return Some((number(bytes, at), "<num>"));
    }
    None
}

/// A run of digits inside a word, unless it is one digit right after a letter.
fn digits_inside_word(bytes: &[u8], at: usize) -> Option<(usize, &'static str)> {
    if !bytes[at].is_ascii_digit() || bytes[at - 1].is_ascii_digit() {
        return None;
    }
    let end = end_of(bytes, at, |b| b.is_ascii_digit());
    if end - at == 1 && bytes[at - 1].is_ascii_alphabetic() {
        return None;
    }
    Some((end, "<num>"))
}

/// Digits, then any `.digits` (decimals, versions, IPv4 addresses).
fn number(bytes: &[u8], at: usize) -> usize {
    let mut end = end_of(bytes, at, |b| b.is_ascii_digit());
    while end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        end = end_of(bytes, end + 1, |b| b.is_ascii_digit());
    }
    end
}

/// A quoted value on one line: its closing quote (not escaped by a backslash) must be
/// followed by the end or by something other than a letter or digit, so that an
/// apostrophe inside a word (`can't`) opens nothing.
fn quoted(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => {
                let end = i + 1;
                return (end == bytes.len() || !is_word(bytes[end])).then_some(end);
            }
            _ => i += 1,
        }
    }
    None
}

/// `8-4-4-4-12` hex digits.
fn uuid(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for (index, length) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if index > 0 {
            (bytes.get(i) == Some(&b'-')).then_some(())?;
            i += 1;
        }
        let end = end_of(bytes, i, |b| b.is_ascii_hexdigit());
        (end - i == length).then_some(())?;
        i = end;
    }
    Some(i)
}

/// `YYYY-MM-DD`, optionally followed by a time of day and an offset, or a time of day
/// alone (`HH:MM:SS`, with a fraction).
fn time(bytes: &[u8], at: usize) -> Option<usize> {
    if let Some(date_end) = fixed_digits(bytes, at, &[4, 2, 2], b'-') {
        let clock = matches!(bytes.get(date_end), Some(b'T' | b' '))
            .then(|| clock(bytes, date_end + 1))
            .flatten();
        return Some(clock.map_or(date_end, |end| offset(bytes, end)));
    }
    let end = clock(bytes, at)?;
    // Without a date, only a time with seconds is taken for one (`10:30` may be a ratio).
    (end - at >= 8).then(|| offset(bytes, end))
}

/// `HH:MM`, optionally `:SS` and a fraction.
fn clock(bytes: &[u8], at: usize) -> Option<usize> {
    let end = fixed_digits(bytes, at, &[2, 2, 2], b':')
        .or_else(|| fixed_digits(bytes, at, &[2, 2], b':'))?;
    if matches!(bytes.get(end), Some(b'.' | b','))
        && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
    {
        return Some(end_of(bytes, end + 1, |b| b.is_ascii_digit()));
    }
    Some(end)
}

/// `Z`, or `+HH:MM`, `-HHMM`, `+HH` after a time.
fn offset(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        Some(b'Z') => at + 1,
        Some(b'+' | b'-') => fixed_digits(bytes, at + 1, &[2, 2], b':')
            .or_else(|| fixed_digits(bytes, at + 1, &[4], b':'))
            .or_else(|| fixed_digits(bytes, at + 1, &[2], b':'))
            .unwrap_or(at),
        _ => at,
    }
}

/// Groups of exactly these many digits separated by `separator`.
fn fixed_digits(bytes: &[u8], at: usize, groups: &[usize], separator: u8) -> Option<usize> {
    let mut i = at;
    for (index, &length) in groups.iter().enumerate() {
        if index > 0 {
            (bytes.get(i) == Some(&separator)).then_some(())?;
            i += 1;
        }
        let end = end_of(bytes, i, |b| b.is_ascii_digit());
        (end - i == length).then_some(())?;
        i = end;
    }
    Some(i)
}

/// `local@domain.tld`.
fn email(bytes: &[u8], at: usize) -> Option<usize> {
    let local_end = end_of(bytes, at, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
    });
    if bytes.get(local_end) != Some(&b'@') {
        return None;
    }
    let domain_start = local_end + 1;
    let mut end = end_of(bytes, domain_start, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
    });
    // A sentence's full stop is not part of the domain.
    while end > domain_start && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let domain = &bytes[domain_start..end];
    let top_level = domain.rsplit(|&b| b == b'.').next().unwrap_or(&[]);
    (domain.contains(&b'.')
        && top_level.len() >= 2
        && top_level.iter().all(u8::is_ascii_alphabetic))
    .then_some(end)
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn end_of(bytes: &[u8], at: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..]
        .iter()
        .position(|&b| !keep(b))
        .map_or(bytes.len(), |offset| at + offset)
}

/// The length of the UTF-8 character that starts with this byte.
fn utf8_width(first: u8) -> usize {
    match first {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as services write them, with what they must be counted as.
    const CASES: &[(&str, &str)] = &[
        // Numbers, with units, decimals, versions and addresses.
        ("user 48213 not found", "user <num> not found"),
        ("timeout after 30s", "timeout after <num>s"),
        (
            "retrying in 5s (attempt 2/5)",
            "retrying in <num>s (attempt <num>/<num>)",
        ),
        ("request took 1234.56ms", "request took <num>ms"),
        (
            "connect to 10.0.3.17:5432 refused",
            "connect to <num>:<num> refused",
        ),
        (
            "HTTP/1.1 503 Service Unavailable",
            "HTTP/<num> <num> Service Unavailable",
        ),
        (
            "GET /api/v1/orders/123456 500",
            "GET /api/v1/orders/<num> <num>",
        ),
        (
            "pool exhausted: 100/100 connections in use",
            "pool exhausted: <num>/<num> connections in use",
        ),
        ("upstream returned -1", "upstream returned -<num>"),
        // Names that hold a digit are kept; counters and ids inside words are not.
        (
            "S3 upload to ec2 host failed over http2",
            "S3 upload to ec2 host failed over http2",
        ),
        ("invalid utf8 in ipv4 header", "invalid utf8 in ipv4 header"),
        (
            "order ORD12345 rejected for u_77",
            "order ORD<num> rejected for u_<num>",
        ),
        ("worker-12 crashed", "worker-<num> crashed"),
        // UUIDs, hex and ids.
        (
            "payment 3f2c8a9e-5b1d-4e7f-9a6b-0c1d2e3f4a5b declined",
            "payment <uuid> declined",
        ),
        (
            "Request 018f6b7a-1c2d-7e3f-8a9b-0c1d2e3f4a5b failed: upstream reset",
            "Request <uuid> failed: upstream reset",
        ),
        (
            "segfault at 0x7ffd5a3c4b20 ip 0x00401a2f",
            "segfault at <hex> ip <hex>",
        ),
        (
            "object 507f1f77bcf86cd799439011 missing",
            "object <hex> missing",
        ),
        (
            "trace 4bf92f3577b34da6a3ce929d0e0e4736 dropped",
            "trace <hex> dropped",
        ),
        (
            "commit 9fceb02d not in repository",
            "commit <hex> not in repository",
        ),
        (
            "instance i-0abc123def4567890 unreachable",
            "instance i-<hex> unreachable",
        ),
        (
            "charge ch_3MmlLrLkdIwHu7ix0snN0B15 failed",
            "charge <id> failed",
        ),
        (
            "job 01ARZ3NDEKTSV4RRFFQ69G5FAV timed out",
            "job <id> timed out",
        ),
        // Words made of hex letters stay words.
        (
            "cache entry added to decade bucket",
            "cache entry added to decade bucket",
        ),
        // Quoted values.
        (
            "duplicate key value violates unique constraint \"orders_pkey\"",
            "duplicate key value violates unique constraint <str>",
        ),
        (
            "relation 'users' does not exist",
            "relation <str> does not exist",
        ),
        ("can't connect to 'db-7'", "can't connect to <str>"),
        (
            "unknown field `colour`, expected `color`",
            "unknown field <str>, expected <str>",
        ),
        (r#"bad input "a \"b\" c" at 3"#, "bad input <str> at <num>"),
        ("unterminated \"quote at 4", "unterminated \"quote at <num>"),
        // Times and dates.
        (
            "certificate expired at 2026-11-24T10:00:00Z",
            "certificate expired at <time>",
        ),
        (
            "job scheduled 2026-11-24 10:00:00.123+01:00 missed",
            "job scheduled <time> missed",
        ),
        ("deadline 2026-11-24 passed", "deadline <time> passed"),
        ("lock held since 10:31:07.250", "lock held since <time>"),
        // E-mail addresses.
        (
            "mail to jane.doe+x@example.co.uk bounced.",
            "mail to <email> bounced.",
        ),
        // Lists, whitespace, stack traces.
        ("ids [1, 2, 3] not found", "ids [<num>] not found"),
        ("ids 4,5 not found", "ids <num> not found"),
        ("  too   many\tspaces  ", "too many spaces"),
        (
            "java.lang.NullPointerException: id 42\n\tat com.example.Orders.get(Orders.java:120)",
            "java.lang.NullPointerException: id <num>",
        ),
        ("", ""),
        // Text beyond ASCII is kept as it is.
        (
            "Zahlung für Kunde 991 fehlgeschlagen ✗",
            "Zahlung für Kunde <num> fehlgeschlagen ✗",
        ),
    ];

    #[test]
    fn variable_parts_become_placeholders() {
        for (message, expected) in CASES {
            assert_eq!(signature(message), *expected, "{message:?}");
        }
    }

    #[test]
    fn messages_that_differ_only_in_values_share_a_signature() {
        let groups = [
            [
                "order 17 for user 3f2c8a9e-5b1d-4e7f-9a6b-0c1d2e3f4a5b failed after 3.5s",
                "order 90211 for user 018f6b7a-1c2d-7e3f-8a9b-0c1d2e3f4a5b failed after 12s",
            ],
            [
                "constraint \"a\" violated at 2026-01-01T00:00:00Z",
                "constraint 'bb' violated at 2027-12-31T23:59:59.999Z",
            ],
        ];
        for [a, b] in groups {
            assert_eq!(signature(a), signature(b), "{a:?} and {b:?}");
        }
        assert_ne!(signature("disk full"), signature("disk almost full"));
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        let message = "é".repeat(MAX_CHARS + 50);
        let cut = signature(&message);
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(signature(&"x".repeat(MAX_CHARS)), "x".repeat(MAX_CHARS));
    }
}
