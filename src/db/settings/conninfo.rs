//! libpq's connection-string syntax: `key=value` strings and `postgresql://` URLs, read
//! into keyword/value pairs by the rules of libpq's own parser (`conninfo_parse` and
//! `conninfo_uri_parse` in fe-connect.c). Which keywords exist is the caller's business.
//!
//! Error messages never quote the text around a mistake: it may be a password.

/// Why a connection string cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("`{scheme}://` is not a PostgreSQL URL (postgresql:// or postgres://)")]
    NotPostgresUrl { scheme: String },
    #[error("expected `=` after the word at character {position}")]
    MissingEquals { position: usize },
    #[error("the quoted value of `{keyword}` has no closing '")]
    UnterminatedQuote { keyword: String },
    #[error("the `[` at character {position} has no matching `]`")]
    UnclosedBracket { position: usize },
    #[error("empty IPv6 address `[]` at character {position}")]
    EmptyIpv6Address { position: usize },
    #[error(
        "unexpected `{found}` at character {position} after an IPv6 address (expected `:`, `/`, `?` or `,`)"
    )]
    AfterIpv6Address { found: char, position: usize },
    #[error("the query parameter at character {position} has no `=`")]
    QueryMissingEquals { position: usize },
    #[error("the query parameter `{keyword}` has a second `=`")]
    QueryExtraEquals { keyword: String },
    #[error("bad percent-escape in the {part}: `%` must be followed by two hex digits")]
    BadPercentEscape { part: String },
    #[error("`%00` is not allowed in the {part}")]
    PercentEscapedZero { part: String },
    #[error("the {part} is not UTF-8 once its percent-escapes are decoded")]
    NotUtf8 { part: String },
}

/// The keyword/value pairs of a connection string in the order written; as in libpq,
/// a later pair overrides an earlier one with the same keyword.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, SyntaxError> {
    for prefix in ["postgresql://", "postgres://"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return UrlParser::new(text, prefix.len()).parse(rest);
        }
    }
    parse_keyword_values(text)
}

/// C's `isspace` in the C locale, which libpq uses: it includes the vertical tab.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `keyword = value` pairs separated by whitespace; a value is either a run of
/// non-space characters or a '...' quoted string, and in both a backslash takes the
/// next character literally.
fn parse_keyword_values(text: &str) -> Result<Vec<(String, String)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let skip_spaces = |mut at: usize| {
        while chars.get(at).copied().is_some_and(is_space) {
            at += 1;
        }
        at
    };
    let mut pairs = Vec::new();
    let mut at = skip_spaces(0);
    while at < chars.len() {
        let start = at;
        while at < chars.len() && chars[at] != '=' && !is_space(chars[at]) {
            at += 1;
        }
        let keyword: String = chars[start..at].iter().collect();
        at = skip_spaces(at);
        if chars.get(at) != Some(&'=') {
            return Err(missing_equals(&keyword, start));
        }
        at = skip_spaces(at + 1);
        let mut value = String::new();
        if chars.get(at) == Some(&'\'') {
            at += 1;
            loop {
                match chars.get(at) {
                    None => return Err(SyntaxError::UnterminatedQuote { keyword }),
                    Some('\'') => break,
                    Some('\\') => {
                        if let Some(&escaped) = chars.get(at + 1) {
                            value.push(escaped);
                            at += 1;
                        }
                    }
                    Some(&c) => value.push(c),
                }
                at += 1;
            }
            at += 1;
        } else {
            while let Some(&c) = chars.get(at) {
                at += 1;
                if is_space(c) {
                    break;
                }
                if c == '\\' {
                    if let Some(&escaped) = chars.get(at) {
                        value.push(escaped);
                        at += 1;
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((keyword, value));
        at = skip_spaces(at);
    }
    Ok(pairs)
}

/// A word without `=`: most often a URL of another database, whose scheme is safe to show.
fn missing_equals(word: &str, start: usize) -> SyntaxError {
    match word.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            SyntaxError::NotPostgresUrl {
                scheme: scheme.to_string(),
            }
        }
        _ => SyntaxError::MissingEquals {
            position: start + 1,
        },
    }
}

/// `postgresql://[user[:password]@][host[:port][,...]][/dbname][?key=value[&...]]`,
/// every part percent-decoded.
struct UrlParser<'a> {
    text: &'a str,
    prefix_len: usize,
    pairs: Vec<(String, String)>,
}

impl<'a> UrlParser<'a> {
    fn new(text: &'a str, prefix_len: usize) -> UrlParser<'a> {
        UrlParser {
            text,
            prefix_len,
            pairs: Vec::new(),
        }
    }

    /// The 1-based character position in the whole string of byte `offset` of the rest.
    fn position(&self, offset: usize) -> usize {
        self.text[..self.prefix_len + offset].chars().count() + 1
    }

    fn store(&mut self, keyword: &str, raw: &str, part: &str) -> Result<(), SyntaxError> {
        let value = percent_decode(raw, part)?;
        self.pairs.push((keyword.to_string(), value));
        Ok(())
    }

    fn parse(mut self, rest: &'a str) -> Result<Vec<(String, String)>, SyntaxError> {
        // libpq looks for `@` only up to the first `/`, so a `?` or `:` before it is
        // still part of the user information.
        let mut at = 0;
        if let Some(end) = rest.find(['@', '/'])
            && rest.as_bytes()[end] == b'@'
        {
            let user_info = &rest[..end];
            let (user, password) = match user_info.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (user_info, None),
            };
            if !user.is_empty() {
                self.store("user", user, "URL's user name")?;
            }
            if let Some(password) = password.filter(|p| !p.is_empty()) {
                self.store("password", password, "URL's password")?;
            }
            at = end + 1;
        }

        let bytes = rest.as_bytes();
        let mut hosts = String::new();
        let mut ports = String::new();
        let mut terminator = loop {
            if bytes.get(at) == Some(&b'[') {
                let start = at + 1;
                let Some(length) = rest[start..].find(']') else {
                    return Err(SyntaxError::UnclosedBracket {
                        position: self.position(at),
                    });
                };
                if length == 0 {
                    return Err(SyntaxError::EmptyIpv6Address {
                        position: self.position(at),
                    });
                }
                hosts.push_str(&rest[start..start + length]);
                at = start + length + 1;
                if let Some(found) = rest[at..].chars().next()
                    && !":/?,".contains(found)
                {
                    return Err(SyntaxError::AfterIpv6Address {
                        found,
                        position: self.position(at),
                    });
                }
            } else {
                let end = find_from(rest, at, &[':', '/', '?', ',']);
                hosts.push_str(&rest[at..end]);
                at = end;
            }
            if bytes.get(at) == Some(&b':') {
                let end = find_from(rest, at + 1, &['/', '?', ',']);
                ports.push_str(&rest[at + 1..end]);
                at = end;
            }
            if bytes.get(at) != Some(&b',') {
                break bytes.get(at).copied();
            }
            hosts.push(',');
            ports.push(',');
            at += 1;
        };
        if !hosts.is_empty() {
            self.store("host", &hosts, "URL's host list")?;
        }
        if !ports.is_empty() {
            self.store("port", &ports, "URL's port list")?;
        }

        if terminator == Some(b'/') {
            let end = find_from(rest, at + 1, &['?']);
            // An empty database name is left unset, so that PGDATABASE still applies.
            if end > at + 1 {
                self.store("dbname", &rest[at + 1..end], "URL's database name")?;
            }
            at = end;
            terminator = bytes.get(at).copied();
        }
        if terminator == Some(b'?') {
            self.parse_query(rest, at + 1)?;
        }
        Ok(self.pairs)
    }

    fn parse_query(&mut self, rest: &str, mut at: usize) -> Result<(), SyntaxError> {
        while at < rest.len() {
            let end = find_from(rest, at, &['&']);
            let parameter = &rest[at..end];
            let Some((keyword, value)) = parameter.split_once('=') else {
                return Err(SyntaxError::QueryMissingEquals {
                    position: self.position(at),
                });
            };
            if value.contains('=') {
                return Err(SyntaxError::QueryExtraEquals {
                    keyword: keyword.to_string(),
                });
            }
            let keyword = percent_decode(keyword, "URL's query parameter name")?;
            let value = percent_decode(value, &format!("value of query parameter `{keyword}`"))?;
            // JDBC's spelling, which libpq accepts too.
            if keyword == "ssl" && value == "true" {
                self.pairs.push(("sslmode".into(), "require".into()));
            } else {
                self.pairs.push((keyword, value));
            }
            at = (end + 1).min(rest.len());
        }
        Ok(())
    }
}

/// The byte offset of the first of `stops` at or after `from`, else the end.
fn find_from(text: &str, from: usize, stops: &[char]) -> usize {
    text[from..]
        .find(stops)
        .map_or(text.len(), |found| from + found)
}

/// Decodes `%XX` escapes strictly, as libpq does: a malformed escape or `%00` is an
/// error (percent-encoding's decoder passes both through, so it cannot be used here).
fn percent_decode(raw: &str, part: &str) -> Result<String, SyntaxError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'%' {
            decoded.push(bytes[at]);
            at += 1;
            continue;
        }
        let hex = |offset: usize| {
            bytes
                .get(at + offset)
                .and_then(|&b| (b as char).to_digit(16))
        };
        let (Some(high), Some(low)) = (hex(1), hex(2)) else {
            return Err(SyntaxError::BadPercentEscape { part: part.into() });
        };
        let byte = (high * 16 + low) as u8;
        if byte == 0 {
            return Err(SyntaxError::PercentEscapedZero { part: part.into() });
        }
        decoded.push(byte);
        at += 3;
    }
    String::from_utf8(decoded).map_err(|_| SyntaxError::NotUtf8 { part: part.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Each case was checked against libpq 15's `PQconninfoParse`, which reports the
    /// last value of each keyword (this parser keeps them all, in order).
    #[test]
    fn keyword_value_strings_read_as_libpq_reads_them() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("  \t\n ", &[]),
            ("host=h port=5432", &[("host", "h"), ("port", "5432")]),
            ("host = h", &[("host", "h")]),
            (
                "host=h\tport=1\nuser=u",
                &[("host", "h"), ("port", "1"), ("user", "u")],
            ),
            ("host=h\x0Bport=1", &[("host", "h"), ("port", "1")]),
            ("application_name='a  b'", &[("application_name", "a  b")]),
            (
                "application_name='a  b\tc sslmode=x' host=h",
                &[("application_name", "a  b\tc sslmode=x"), ("host", "h")],
            ),
            (r"password='it\'s'", &[("password", "it's")]),
            (r"password='back\\slash'", &[("password", r"back\slash")]),
            (r"password='\t'", &[("password", "t")]),
            (r"password=a\ b", &[("password", "a b")]),
            (r"password=a\'b", &[("password", "a'b")]),
            ("password=it's", &[("password", "it's")]),
            (r"host=h\", &[("host", "h")]),
            ("dbname=''", &[("dbname", "")]),
            ("dbname= ", &[("dbname", "")]),
            ("host=h port='1'", &[("host", "h"), ("port", "1")]),
            (
                "application_name='x'dbname=y",
                &[("application_name", "x"), ("dbname", "y")],
            ),
            ("host=a host=b", &[("host", "a"), ("host", "b")]),
            ("=x", &[("", "x")]),
            ("service=logs", &[("service", "logs")]),
            ("dbname=é'ü", &[("dbname", "é'ü")]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(pairs(expected)), "{text:?}");
        }
    }

    #[test]
    fn keyword_value_mistakes_are_reported_without_quoting_the_text() {
        let cases: &[(&str, SyntaxError)] = &[
            ("host", SyntaxError::MissingEquals { position: 1 }),
            ("host=h s3cret", SyntaxError::MissingEquals { position: 8 }),
            (
                "host=h dbname='unterminated",
                SyntaxError::UnterminatedQuote {
                    keyword: "dbname".into(),
                },
            ),
            (
                r"password='ends in a backslash\'",
                SyntaxError::UnterminatedQuote {
                    keyword: "password".into(),
                },
            ),
            (
                "mysql://u:pw@h/db",
                SyntaxError::NotPostgresUrl {
                    scheme: "mysql".into(),
                },
            ),
            (
                "POSTGRESQL://h",
                SyntaxError::NotPostgresUrl {
                    scheme: "POSTGRESQL".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).as_ref(), Err(expected), "{text:?}");
        }
        let shown = parse("host=h s3cret").unwrap_err().to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn urls_read_as_libpq_reads_them() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("postgresql://", &[]),
            ("postgres://h", &[("host", "h")]),
            (
                "postgresql://alice:s3cret@db.example:6543/logs",
                &[
                    ("user", "alice"),
                    ("password", "s3cret"),
                    ("host", "db.example"),
                    ("port", "6543"),
                    ("dbname", "logs"),
                ],
            ),
            (
                "postgresql://a:1,b:2/db",
                &[("host", "a,b"), ("port", "1,2"), ("dbname", "db")],
            ),
            (
                "postgresql://a,b:2/db",
                &[("host", "a,b"), ("port", ",2"), ("dbname", "db")],
            ),
            (
                "postgresql://[::1]:5433/db",
                &[("host", "::1"), ("port", "5433"), ("dbname", "db")],
            ),
            (
                "postgresql://%2Fvar%2Frun/db",
                &[("host", "/var/run"), ("dbname", "db")],
            ),
            (
                "postgresql:///db?host=/tmp",
                &[("dbname", "db"), ("host", "/tmp")],
            ),
            (
                "postgresql://h/db?ssl=true",
                &[("host", "h"), ("dbname", "db"), ("sslmode", "require")],
            ),
            (
                "postgresql://h/db?sslmode=verify-full&application_name=a%20b&",
                &[
                    ("host", "h"),
                    ("dbname", "db"),
                    ("sslmode", "verify-full"),
                    ("application_name", "a b"),
                ],
            ),
            ("postgresql://u%40x@h", &[("user", "u@x"), ("host", "h")]),
            (
                "postgresql://u:p:q@h",
                &[("user", "u"), ("password", "p:q"), ("host", "h")],
            ),
            ("postgresql://u:@h", &[("user", "u"), ("host", "h")]),
            ("postgresql://@h", &[("host", "h")]),
            ("postgresql://h?", &[("host", "h")]),
            ("postgresql://h/", &[("host", "h")]),
            ("postgresql://:5433", &[("port", "5433")]),
            (
                "postgresql://a:1:2/db",
                &[("host", "a"), ("port", "1:2"), ("dbname", "db")],
            ),
            ("postgresql://h/db/x", &[("host", "h"), ("dbname", "db/x")]),
            (
                "postgresql://h/db?nosuch=1",
                &[("host", "h"), ("dbname", "db"), ("nosuch", "1")],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(pairs(expected)), "{text:?}");
        }
    }

    #[test]
    fn url_mistakes_are_reported_without_quoting_the_text() {
        let cases: &[(&str, SyntaxError)] = &[
            (
                "postgresql://h/db?x",
                SyntaxError::QueryMissingEquals { position: 19 },
            ),
            (
                "postgresql://h/db?&",
                SyntaxError::QueryMissingEquals { position: 19 },
            ),
            (
                "postgresql://h/db?a=b=c",
                SyntaxError::QueryExtraEquals {
                    keyword: "a".into(),
                },
            ),
            (
                "postgresql://[::1",
                SyntaxError::UnclosedBracket { position: 14 },
            ),
            (
                "postgresql://[]/db",
                SyntaxError::EmptyIpv6Address { position: 14 },
            ),
            (
                "postgresql://[::1]x/db",
                SyntaxError::AfterIpv6Address {
                    found: 'x',
                    position: 19,
                },
            ),
            (
                "postgresql://h/%zz",
                SyntaxError::BadPercentEscape {
                    part: "URL's database name".into(),
                },
            ),
            (
                "postgresql://u:pa%2@h",
                SyntaxError::BadPercentEscape {
                    part: "URL's password".into(),
                },
            ),
            (
                "postgresql://h/a%00b",
                SyntaxError::PercentEscapedZero {
                    part: "URL's database name".into(),
                },
            ),
            (
                "postgresql://h/%ff",
                SyntaxError::NotUtf8 {
                    part: "URL's database name".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).as_ref(), Err(expected), "{text:?}");
        }
    }
}
