//! Routes: an event's endpoint with its variable parts replaced, so that
//! `/api/v1/orders/762246` and `/api/v1/orders/9` count as one route,
//! `/api/v1/orders/:id`; and the per-service cap on distinct routes, which keeps the
//! rollups bounded whatever ids a service puts in its paths.
//!
//! # From endpoint to path
//!
//! Surrounding whitespace is trimmed; a request line (`GET /path HTTP/1.1`, an
//! upper-case method first) is reduced to its target; a full URL
//! (`https://shop.example.com:8443/cart?x=1`) to its path; the query string and the
//! fragment are dropped. The path is then templated segment by segment: empty segments
//! (`//`, a trailing `/`) are skipped and `;name=value` parameters (Java's
//! `;jsessionid=...`) dropped, so `/api/orders/` is `/api/orders`. An empty path is `/`.
//! An endpoint that is not a path (`orders.get`, a gRPC method without its `/`) is
//! templated the same way and keeps not starting with `/`.
//!
//! # Default templating
//!
//! A whole segment becomes `:id` when it is
//!
//! | what | examples |
//! |---|---|
//! | a number, or digits with `.-_:,+` and no letter | `762246`, `-1`, `3.14`, `2026-11-24`, `08:00:00`, `10.0.0.1`, `1.2.3` |
//! | a date-time (starts `yyyy-mm-dd`) | `2026-11-24T08:00:00Z` |
//! | a UUID, any case | `3fa85f64-5717-4562-b3fc-2c963f66afa6` |
//! | an email address | `jane.doe@example.com` (not `logo@2x.png`) |
//! | data a client encoded: a `%XX` escape or whitespace | `John%20Smith`, `caf%C3%A9` |
//! | a token: 16 or more of `A-Za-z0-9-_=~` with a digit and both cases | Stripe-style `pi_3MtwBwLkdIwHu7ix28a3tqPa`, nanoids |
//! | a JSON Web Token | `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dQw4w9WgXcQ` |
//!
//! Otherwise a segment with a digit is looked at in parts, split at `.`, `-`, `_` and
//! `~`; a part becomes `:id` when it is
//!
//! | what | examples |
//! |---|---|
//! | all digits | `order-762246` → `order-:id`, `page-2` → `page-:id` |
//! | hex of 7 or more with a digit | `app.3f2a9c1b.js` → `app.:id.js`, commit ids, Mongo ObjectIds, SHA-256 |
//! | a run of 4 or more digits | `user1234` → `:id`, `IMG_20240101_123456.jpg` → `IMG_:id.jpg` |
//! | random-looking: 8 or more letters and digits, with a digit, under a quarter of the letters vowels | `index-BdR6zT3K.js` → `index-:id.js`, ULIDs |
//!
//! and consecutive `:id` parts merge with the separators between them. A segment
//! without a digit is kept unless it is an email or encoded data.
//!
//! What stays: words and versions (`v1`, `v1.2`, `v2beta1`, `oauth2`, `sha256`, `i18n`,
//! `k8s`, `getUserByIdV2`, `logo@2x.png`), and templates themselves (templating a route
//! changes nothing). What the defaults cannot know: a number that is a version
//! (`/rest/api/2/issue/7` becomes `/rest/api/:id/issue/:id`, `jquery-3.6.0.min.js`
//! becomes `jquery-:id.min.js`), names without digits (`/users/alice`), and slugs
//! (`/blog/how-to-bake-bread`). Rules fix the first two; the cap bounds them all.
//!
//! # Rules
//!
//! A rule is a path template tried before the defaults, the first matching rule winning.
//! Its segments are literals (matched as they are), `:name` (any one segment, written as
//! `:name`), `*` (any one segment, kept as it is) and, last, `**` (the rest of the path,
//! zero or more segments, written as `**`). For example `/rest/api/*/issue/:key` turns
//! `/rest/api/2/issue/PROJ-7` into `/rest/api/2/issue/:key`, `/users/:user/**` turns
//! `/users/alice/repos/x` into `/users/:user/**`. Rules match the segments described
//! above (no query, no empty segments) and only endpoints that start with `/`.
//!
//! # The route cap
//!
//! [`RouteCap`] admits at most [`DEFAULT_ROUTE_LIMIT`] (200) distinct routes per service
//! unless told otherwise; once a service has that many, its new routes count as
//! [`OTHER_ROUTE`], `(other)`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rustc_hash::{FxHashMap, FxHashSet};

/// What the defaults put in place of a variable part.
const ID: &str = ":id";

/// The route of what a service's route cap leaves out.
pub const OTHER_ROUTE: &str = "(other)";

/// How many distinct routes a service keeps by default. Real services have tens of
/// routes; 200 leaves room for large APIs while bounding a service whose paths hold ids
/// the defaults miss.
pub const DEFAULT_ROUTE_LIMIT: usize = 200;

/// Turns endpoints into routes: the user's rules first, then the defaults.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplater {
    rules: Vec<RouteRule>,
}

impl RouteTemplater {
    /// A templater that tries `rules` in order before the defaults.
    pub fn new(rules: Vec<RouteRule>) -> RouteTemplater {
        RouteTemplater { rules }
    }

    /// The route of an endpoint. Borrowed from `endpoint` when the route is a piece of it
    /// (nothing replaced), so that the common case allocates nothing.
    pub fn template<'a>(&self, endpoint: &'a str) -> Cow<'a, str> {
        let path = path_of(endpoint);
        match self.rules.iter().find(|rule| rule.matches(path)) {
            Some(rule) => rule.apply(path),
            None => template_by_default(path),
        }
    }
}

/// The part of an endpoint that holds its path, perhaps followed by a query string or a
/// fragment, where `segments` stops: see "From endpoint to path" in the module
/// documentation.
fn path_of(endpoint: &str) -> &str {
    let mut target = endpoint.trim_ascii();
    // The common case, a path, is neither a request line nor a URL.
    if target.starts_with('/') {
        return target;
    }
    if let Some((method, rest)) = target.split_once(' ')
        && method.bytes().all(|byte| byte.is_ascii_uppercase())
    {
        let rest = rest.trim_ascii_start();
        target = rest
            .split_once(' ')
            .map_or(rest, |(request_target, _)| request_target);
    }
    if let Some((scheme, rest)) = target.split_once("://")
        && is_url_scheme(scheme)
    {
        target = rest
            .find(['/', '?', '#'])
            .map_or("", |start| &rest[start..]);
    }
    target
}

fn is_url_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
}

/// A non-empty segment of a path, with the classes of its bytes.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    text: &'a str,
    /// The classes some byte has, and those every byte has.
    any: u8,
    all: u8,
}

/// Byte classes, so that the one pass that splits a path also tells what each segment
/// holds: paths are short, and this runs for every line.
const DIGIT: u8 = 1;
/// `@`, `%` and whitespace, which emails and encoded data hold.
const TEXT_ID: u8 = 2;
/// Digits and the separators of numbers, dates, times and addresses.
const NUMBER: u8 = 4;
/// `/`, and `?` and `#`, where the path ends.
const SEGMENT_END: u8 = 8;
/// `;`, where parameters start.
const PARAMETERS: u8 = 16;

static BYTE_CLASSES: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        classes[byte] = match b {
            b'0'..=b'9' => DIGIT | NUMBER,
            b'.' | b'-' | b'_' | b':' | b',' | b'+' => NUMBER,
            b'@' | b'%' => TEXT_ID,
            b'/' | b'?' | b'#' => SEGMENT_END,
            b';' => PARAMETERS,
            _ if b.is_ascii_whitespace() => TEXT_ID,
            _ => 0,
        };
        byte += 1;
    }
    classes
}

fn class_of(byte: u8) -> u8 {
    BYTE_CLASSES[usize::from(byte)]
}

/// The non-empty segments of a path, up to its query string or fragment, without
/// `;name=value` parameters.
fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    let bytes = path.as_bytes();
    let mut next = 0;
    std::iter::from_fn(move || {
        while next < bytes.len() {
            let start = next;
            let mut end = start;
            let (mut any, mut all) = (0, u8::MAX);
            while let Some(&byte) = bytes.get(end) {
                let class = class_of(byte);
                if class & (SEGMENT_END | PARAMETERS) != 0 {
                    break;
                }
                any |= class;
                all &= class;
                end += 1;
            }
            let parameters = bytes[end..]
                .iter()
                .take_while(|&&byte| class_of(byte) & SEGMENT_END == 0)
                .count();
            let stop = end + parameters;
            next = if bytes.get(stop) == Some(&b'/') {
                stop + 1
            } else {
                bytes.len()
            };
            if end > start {
                return Some(Segment {
                    text: &path[start..end],
                    any,
                    all,
                });
            }
        }
        None
    })
}

fn template_by_default(path: &str) -> Cow<'_, str> {
    let mut route = RouteWriter::new(path);
    for segment in segments(path) {
        match default_template(segment) {
            SegmentTemplate::Kept => route.push(segment.text),
            SegmentTemplate::Id => route.push(ID),
            SegmentTemplate::Parts => route.push(&template_parts(segment.text)),
        }
    }
    route.finish()
}

/// What the defaults make of a segment.
enum SegmentTemplate {
    Kept,
    /// The whole segment is an id: the first table of the module documentation.
    Id,
    /// Some of its parts are ids: the second table.
    Parts,
}

fn default_template(Segment { text, any, all }: Segment<'_>) -> SegmentTemplate {
    let bytes = text.as_bytes();
    if any & TEXT_ID != 0 && (is_email(text) || is_client_encoded(bytes)) {
        return SegmentTemplate::Id;
    }
    if any & DIGIT == 0 {
        return SegmentTemplate::Kept;
    }
    let is_number_like = all & NUMBER != 0;
    if is_number_like || is_date_time(bytes) || is_uuid(bytes) || is_token(bytes) {
        SegmentTemplate::Id
    } else if !is_version(text) && parts(text).any(|(part, _)| is_variable_part(part)) {
        SegmentTemplate::Parts
    } else {
        SegmentTemplate::Kept
    }
}

/// `v1`, `v1.2`, `V3`: an API version, which stays.
fn is_version(segment: &str) -> bool {
    segment.strip_prefix(['v', 'V']).is_some_and(|number| {
        number.starts_with(|c: char| c.is_ascii_digit())
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    })
}

fn is_email(segment: &str) -> bool {
    let Some((local, domain)) = segment.split_once('@') else {
        return false;
    };
    let Some((host, top_level)) = domain.rsplit_once('.') else {
        return false;
    };
    // `logo@2x.png`: a high-resolution image, not a mailbox.
    let first_label = host.split('.').next().unwrap_or(host);
    let is_scale = first_label
        .strip_suffix('x')
        .is_some_and(|scale| !scale.is_empty() && scale.bytes().all(|b| b.is_ascii_digit()));
    !local.is_empty()
        && !host.is_empty()
        && !is_scale
        && top_level.len() >= 2
        && top_level.bytes().all(|byte| byte.is_ascii_alphabetic())
}

fn is_client_encoded(bytes: &[u8]) -> bool {
    bytes.iter().any(u8::is_ascii_whitespace)
        || bytes
            .windows(3)
            .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn is_date_time(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(position, &byte)| match position {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            })
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes
            .iter()
            .enumerate()
            .all(|(position, &byte)| match position {
                8 | 13 | 18 | 23 => byte == b'-',
                _ => byte.is_ascii_hexdigit(),
            })
}

/// A random token, or a JSON Web Token. Dots are left to file and package names
/// (`grpc.health.v1.Health`) except in JWTs.
fn is_token(bytes: &[u8]) -> bool {
    let is_jwt =
        bytes.starts_with(b"eyJ") && bytes.iter().filter(|&&byte| byte == b'.').count() == 2;
    bytes.len() >= 16
        && bytes.iter().any(u8::is_ascii_uppercase)
        && bytes.iter().any(u8::is_ascii_lowercase)
        && bytes.iter().all(|&byte| {
            byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'_' | b'=' | b'~')
                || (byte == b'.' && is_jwt)
        })
}

fn is_part_separator(byte: u8) -> bool {
    matches!(byte, b'.' | b'-' | b'_' | b'~')
}

/// The parts of a segment, each with the separators that follow it.
fn parts(segment: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = Some(segment);
    std::iter::from_fn(move || {
        let text = rest?;
        let part_end = text
            .bytes()
            .position(is_part_separator)
            .unwrap_or(text.len());
        let separators_end = text[part_end..]
            .bytes()
            .position(|byte| !is_part_separator(byte))
            .map_or(text.len(), |offset| part_end + offset);
        rest = (separators_end < text.len()).then(|| &text[separators_end..]);
        Some((&text[..part_end], &text[part_end..separators_end]))
    })
}

/// The segment with its variable parts replaced, consecutive ones merged with the
/// separators between them.
fn template_parts(segment: &str) -> String {
    let mut templated = String::with_capacity(segment.len());
    let mut separators_before = "";
    let mut previous_was_id = false;
    for (part, separators_after) in parts(segment) {
        let is_id = is_variable_part(part);
        if !(is_id && previous_was_id) {
            templated.push_str(separators_before);
            templated.push_str(if is_id { ID } else { part });
        }
        previous_was_id = is_id;
        separators_before = separators_after;
    }
    templated.push_str(separators_before);
    templated
}

/// Whether a part of a segment is an id: the second table of the module documentation.
fn is_variable_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    let digits = bytes.iter().filter(|byte| byte.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let longest_digit_run = bytes
        .split(|byte| !byte.is_ascii_digit())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    let letters = bytes
        .iter()
        .filter(|byte| byte.is_ascii_alphabetic())
        .count();
    let vowels = bytes
        .iter()
        .filter(|byte| b"aeiouAEIOU".contains(byte))
        .count();
    let alphanumeric = digits + letters == bytes.len();
    digits == bytes.len()
        || (bytes.len() >= 7 && bytes.iter().all(u8::is_ascii_hexdigit))
        || longest_digit_run >= 4
        || (bytes.len() >= 8 && alphanumeric && letters > 0 && vowels * 4 < letters)
}

/// Writes a route segment by segment, borrowing the path for as long as the route is a
/// prefix of it, so that a path the templating leaves alone costs no allocation.
struct RouteWriter<'a> {
    path: &'a str,
    /// Whether the route starts with `/` (a non-path endpoint's does not).
    absolute: bool,
    written: Written,
}

enum Written {
    /// The route so far is `path[..end]`.
    Prefix(usize),
    Owned(String),
}

impl<'a> RouteWriter<'a> {
    fn new(path: &'a str) -> RouteWriter<'a> {
        RouteWriter {
            path,
            absolute: path.starts_with('/'),
            written: Written::Prefix(0),
        }
    }

    #[inline]
    fn push(&mut self, segment: &str) {
        let first = matches!(self.written, Written::Prefix(0));
        let separator = if self.absolute || !first { "/" } else { "" };
        match &mut self.written {
            Written::Prefix(end) => {
                let rest = &self.path[*end..];
                let has_separator = separator.is_empty() || rest.as_bytes().first() == Some(&b'/');
                let next = has_separator
                    .then(|| rest.get(separator.len()..separator.len() + segment.len()))
                    .flatten();
                // A segment the templating kept is the very slice of the path.
                let same = next.is_some_and(|next| {
                    std::ptr::eq(next.as_ptr(), segment.as_ptr()) || next == segment
                });
                if same {
                    *end += separator.len() + segment.len();
                } else {
                    let mut route = String::with_capacity(self.path.len() + ID.len());
                    route.push_str(&self.path[..*end]);
                    route.push_str(separator);
                    route.push_str(segment);
                    self.written = Written::Owned(route);
                }
            }
            Written::Owned(route) => {
                route.push_str(separator);
                route.push_str(segment);
            }
        }
    }

    fn finish(self) -> Cow<'a, str> {
        match self.written {
            Written::Prefix(0) => Cow::Borrowed("/"),
            Written::Prefix(end) => Cow::Borrowed(&self.path[..end]),
            Written::Owned(route) => Cow::Owned(route),
        }
    }
}

/// A user's route rule (see "Rules" in the module documentation), parsed with
/// [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    text: String,
    parts: Vec<RulePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RulePart {
    Literal(String),
    /// `:name`, kept with its colon since that is what the route shows.
    Named(String),
    /// `*`
    Kept,
    /// `**`
    Rest,
}

impl RouteRule {
    fn matches(&self, path: &str) -> bool {
        if !path.starts_with('/') {
            return false;
        }
        let mut segments = segments(path);
        for part in &self.parts {
            if *part == RulePart::Rest {
                return true;
            }
            let Some(segment) = segments.next() else {
                return false;
            };
            if let RulePart::Literal(literal) = part
                && literal != segment.text
            {
                return false;
            }
        }
        segments.next().is_none()
    }

    /// The route of a path this rule matches.
    fn apply<'a>(&self, path: &'a str) -> Cow<'a, str> {
        let mut route = RouteWriter::new(path);
        let mut segments = segments(path).map(|segment| segment.text);
        for part in &self.parts {
            let segment = segments.next();
            match part {
                RulePart::Literal(text) | RulePart::Named(text) => route.push(text),
                RulePart::Kept => route.push(segment.unwrap_or_default()),
                RulePart::Rest => route.push("**"),
            }
        }
        route.finish()
    }
}

impl FromStr for RouteRule {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<RouteRule, crate::Error> {
        let refuse = |problem: String| {
            crate::Error::Usage(format!(
                "route rule `{text}`: {problem}\nhint: a rule is a path template such as \
                 `/api/*/users/:user/**`: literal segments, `:name` for any one segment (the \
                 route shows `:name`), `*` for one segment kept as it is, and a last `**` for \
                 the rest of the path"
            ))
        };
        let rule = text.trim();
        let Some(body) = rule.strip_prefix('/') else {
            return Err(refuse("it must start with `/`, as a path does".into()));
        };
        if rule.contains(['?', '#']) {
            return Err(refuse(
                "rules match paths without their query string or fragment; remove what \
                 starts at `?` or `#`"
                    .into(),
            ));
        }
        let body = body.strip_suffix('/').unwrap_or(body);
        let pieces: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        let mut parts = Vec::with_capacity(pieces.len());
        for (position, &piece) in pieces.iter().enumerate() {
            let part = match piece {
                "" => return Err(refuse("it has an empty segment (`//`)".into())),
                "**" if position + 1 < pieces.len() => {
                    return Err(refuse(
                        "`**` stands for the rest of the path, so it must be the last segment"
                            .into(),
                    ));
                }
                "**" => RulePart::Rest,
                "*" => RulePart::Kept,
                _ if piece.contains('*') => {
                    return Err(refuse(format!(
                        "`{piece}`: `*` and `**` stand for whole segments, not parts of one"
                    )));
                }
                _ if piece.contains(';') => {
                    return Err(refuse(format!(
                        "`{piece}`: `;` parameters are dropped from paths before matching"
                    )));
                }
                _ if piece.starts_with(':') => {
                    let name = &piece[1..];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(refuse(format!(
                            "`{piece}`: a name after `:` is made of letters, digits and `_`, \
                             such as `:id`"
                        )));
                    }
                    RulePart::Named(piece.to_string())
                }
                _ => RulePart::Literal(piece.to_string()),
            };
            parts.push(part);
        }
        Ok(RouteRule {
            text: rule.to_string(),
            parts,
        })
    }
}

impl fmt::Display for RouteRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Admits at most a fixed number of distinct routes per service and maps the others to
/// [`OTHER_ROUTE`]. Which routes get in depends on the order they arrive in, so seed it
/// with the routes the database already has, which are always admitted.
#[derive(Debug, Clone)]
pub struct RouteCap {
    limit: usize,
    services: FxHashMap<Box<str>, FxHashSet<Box<str>>>,
}

impl Default for RouteCap {
    fn default() -> RouteCap {
        RouteCap::new(DEFAULT_ROUTE_LIMIT)
    }
}

impl RouteCap {
    /// A cap of `limit` routes per service ([`OTHER_ROUTE`] not counted).
    pub fn new(limit: usize) -> RouteCap {
        RouteCap {
            limit,
            services: FxHashMap::default(),
        }
    }

    /// Records a route the service already has, admitted even beyond the limit (it is
    /// in the database already), and counted towards it.
    pub fn seed(&mut self, service: &str, route: &str) {
        if route == OTHER_ROUTE {
            return;
        }
        match self.services.get_mut(service) {
            Some(routes) => {
                if !routes.contains(route) {
                    routes.insert(route.into());
                }
            }
            None => {
                self.services
                    .insert(service.into(), FxHashSet::from_iter([route.into()]));
            }
        }
    }

    /// The route to count this event under: `route` itself if the service has it or has
    /// room for it, else [`OTHER_ROUTE`]. Allocates only to remember a new route.
    pub fn admit<'r>(&mut self, service: &str, route: &'r str) -> &'r str {
        if route == OTHER_ROUTE {
            return OTHER_ROUTE;
        }
        let limit = self.limit;
        let admitted = match self.services.get_mut(service) {
            Some(routes) => {
                routes.contains(route) || (routes.len() < limit && routes.insert(route.into()))
            }
            None => {
                let admitted = limit > 0;
                let routes = if admitted {
                    FxHashSet::from_iter([route.into()])
                } else {
                    FxHashSet::default()
                };
                self.services.insert(service.into(), routes);
                admitted
            }
        };
        if admitted { route } else { OTHER_ROUTE }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn template(endpoint: &str) -> Cow<'_, str> {
        RouteTemplater::default().template(endpoint)
    }

    #[test]
    fn defaults_template_real_world_endpoints() {
        let cases = [
            // REST ids, query strings, fragments, trailing and doubled slashes
            ("/api/v1/orders/762246", "/api/v1/orders/:id"),
            (
                "/api/v1/orders/762246/items/3",
                "/api/v1/orders/:id/items/:id",
            ),
            (
                "/api/v1/orders/762246?expand=items&page=2",
                "/api/v1/orders/:id",
            ),
            ("/api/v1/orders/762246#top", "/api/v1/orders/:id"),
            ("/api/search?q=/api/orders/5", "/api/search"),
            ("/api/orders/762246/", "/api/orders/:id"),
            ("//api///orders//", "/api/orders"),
            ("/api/orders/-1", "/api/orders/:id"),
            ("  /api/orders/7\n", "/api/orders/:id"),
            (
                "/api/v1/users/42/avatar.png",
                "/api/v1/users/:id/avatar.png",
            ),
            // full URLs, request lines, empty paths, non-path endpoints
            (
                "https://shop.example.com:8443/api/orders/5?x=1",
                "/api/orders/:id",
            ),
            ("http://example.com", "/"),
            ("http://example.com?x=1", "/"),
            ("GET /api/orders/42 HTTP/1.1", "/api/orders/:id"),
            ("CONNECT example.com:443 HTTP/1.1", "example.com:443"),
            ("", "/"),
            ("/", "/"),
            ("?q=1", "/"),
            ("*", "*"),
            ("orders.get", "orders.get"),
            ("grpc.health.v1.Health/Check", "grpc.health.v1.Health/Check"),
            ("resize-762246", "resize-:id"),
            // UUIDs, hashes, commit and object ids, tokens
            (
                "/users/3fa85f64-5717-4562-b3fc-2c963f66afa6/profile",
                "/users/:id/profile",
            ),
            ("/users/3FA85F64-5717-4562-B3FC-2C963F66AFA6", "/users/:id"),
            (
                "/repos/logctl/commit/9fceb02d0ae598e95dc970b74767f19372d61af8",
                "/repos/logctl/commit/:id",
            ),
            ("/repos/logctl/commit/9fceb02", "/repos/logctl/commit/:id"),
            ("/objects/507f1f77bcf86cd799439011", "/objects/:id"),
            ("/files/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/files/:id"),
            (
                "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa",
                "/v1/payment_intents/:id",
            ),
            ("/v1/customers/cus_J3k2L9mN0pQ", "/v1/customers/cus_:id"),
            (
                "/api/tokens/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dQw4w9WgXcQ",
                "/api/tokens/:id",
            ),
            ("/s/AbC9xK2mQ7", "/s/:id"),
            // dates, times, numbers with separators
            ("/reports/2026-11-24", "/reports/:id"),
            (
                "/reports/2026-11-24T08:00:00Z/summary",
                "/reports/:id/summary",
            ),
            (
                "/archive/2026/11/24/post-title",
                "/archive/:id/:id/:id/post-title",
            ),
            ("/exports/report-2026-11-24.csv", "/exports/report-:id.csv"),
            ("/at/08:00:00", "/at/:id"),
            ("/hosts/10.0.0.1/metrics", "/hosts/:id/metrics"),
            ("/phone/+4930123456", "/phone/:id"),
            // emails and what clients encode
            ("/users/jane.doe@example.com", "/users/:id"),
            ("/users/jane.doe%40example.com/orders", "/users/:id/orders"),
            ("/search/red%20shoes", "/search/:id"),
            ("/search/red shoes", "/search/:id"),
            ("/wiki/Caf%C3%A9", "/wiki/:id"),
            // ids inside segments, file names with hashes and versions
            ("/accounts/user1234/settings", "/accounts/:id/settings"),
            ("/products/blue-shirt-12345", "/products/blue-shirt-:id"),
            ("/static/js/app.3f2a9c1b.js", "/static/js/app.:id.js"),
            (
                "/static/js/main.3f2a9c1b.chunk.js",
                "/static/js/main.:id.chunk.js",
            ),
            ("/assets/index-BdR6zT3K.js", "/assets/index-:id.js"),
            (
                "/_next/static/chunks/pages/index-3f2a9c1b4d5e6f70.js",
                "/_next/static/chunks/pages/index-:id.js",
            ),
            (
                "/_next/static/V1StGXR8_Z5jdHi6B-myT/_buildManifest.js",
                "/_next/static/:id/_buildManifest.js",
            ),
            ("/uploads/IMG_20240101_123456.jpg", "/uploads/IMG_:id.jpg"),
            ("/static/jquery-3.6.0.min.js", "/static/jquery-:id.min.js"),
            // Java session parameters
            (
                "/cart;jsessionid=1A2B3C4D5E6F7A8B/checkout",
                "/cart/checkout",
            ),
            // what stays
            ("/api/v1.2/orders", "/api/v1.2/orders"),
            ("/api/v2beta1/pods", "/api/v2beta1/pods"),
            ("/oauth2/authorize", "/oauth2/authorize"),
            ("/sha256/lookup", "/sha256/lookup"),
            ("/api/users/getUserByIdV2", "/api/users/getUserByIdV2"),
            ("/i18n/en-US/messages", "/i18n/en-US/messages"),
            ("/images/logo@2x.png", "/images/logo@2x.png"),
            (
                "/static/fonts/Inter-roman.var.woff2",
                "/static/fonts/Inter-roman.var.woff2",
            ),
            ("/download/file_v2.tar.gz", "/download/file_v2.tar.gz"),
            ("/favicon.ico", "/favicon.ico"),
            ("/users/alice", "/users/alice"),
            ("/api/orders/:id", "/api/orders/:id"),
        ];
        for (endpoint, route) in cases {
            assert_eq!(template(endpoint), route, "endpoint {endpoint:?}");
        }
    }

    #[test]
    fn what_templating_leaves_alone_is_borrowed() {
        for endpoint in [
            "/api/v1/orders",
            "/api/v1/orders/",
            "https://example.com/api/v1/orders?page=2",
            "GET /api/v1/orders HTTP/1.1",
            "",
            "orders.get",
        ] {
            assert!(
                matches!(template(endpoint), Cow::Borrowed(_)),
                "endpoint {endpoint:?}"
            );
        }
    }

    fn rule(text: &str) -> RouteRule {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn rules_come_first_and_the_first_match_wins() {
        let templater = RouteTemplater::new(vec![
            rule("/rest/api/*/issue/:key"),
            rule("/users/:user/**"),
            rule("/users/admin"),
            rule("/static/**"),
            rule("/"),
        ]);
        let cases = [
            ("/rest/api/2/issue/PROJ-7", "/rest/api/2/issue/:key"),
            (
                "/rest/api/2/issue/PROJ-7/comments",
                "/rest/api/:id/issue/PROJ-:id/comments",
            ),
            ("/users/alice/repos/x?tab=1", "/users/:user/**"),
            ("/users/alice", "/users/:user/**"),
            ("/users", "/users"),
            ("/static/js/app.3f2a9c1b.js", "/static/**"),
            ("/static", "/static/**"),
            ("https://example.com/", "/"),
            ("users/alice", "users/alice"),
        ];
        for (endpoint, route) in cases {
            assert_eq!(templater.template(endpoint), route, "endpoint {endpoint:?}");
        }
        let kept = templater.template("/rest/api/2/issue/:key");
        assert!(matches!(kept, Cow::Borrowed(_)));
    }

    #[test]
    fn rules_are_parsed_with_errors_that_show_the_way() {
        for (text, problem) in [
            ("", "must start with `/`"),
            ("api/users", "must start with `/`"),
            ("/api//users", "empty segment"),
            ("/static/**/x", "must be the last segment"),
            ("/users/user*", "whole segments"),
            ("/users/:", "a name after `:`"),
            ("/users/:user-id", "a name after `:`"),
            ("/search?q=:q", "query string"),
            ("/cart;jsessionid=x", "`;` parameters"),
        ] {
            let error = text.parse::<RouteRule>().unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(error.contains(&format!("route rule `{text}`")), "{error}");
            assert!(error.contains("/api/*/users/:user/**"), "{error}");
        }
        assert_eq!(rule(" /users/:id/ ").to_string(), "/users/:id/");
        let usage: crate::Error = "x".parse::<RouteRule>().unwrap_err();
        assert_eq!(usage.outcome(), crate::Outcome::Usage);
    }

    #[test]
    fn the_cap_admits_a_limited_number_of_routes_per_service() {
        let mut cap = RouteCap::new(2);
        assert_eq!(cap.admit("api", "/a"), "/a");
        assert_eq!(cap.admit("api", "/b"), "/b");
        assert_eq!(cap.admit("api", "/c"), OTHER_ROUTE);
        assert_eq!(cap.admit("api", "/a"), "/a");
        assert_eq!(cap.admit("api", OTHER_ROUTE), OTHER_ROUTE);
        assert_eq!(cap.admit("web", "/c"), "/c");

        let mut seeded = RouteCap::new(2);
        for route in ["/x", "/y", "/z", OTHER_ROUTE] {
            seeded.seed("api", route);
        }
        assert_eq!(seeded.admit("api", "/z"), "/z");
        assert_eq!(seeded.admit("api", "/a"), OTHER_ROUTE);

        let mut closed = RouteCap::new(0);
        assert_eq!(closed.admit("api", "/a"), OTHER_ROUTE);
        closed.seed("api", "/a");
        assert_eq!(closed.admit("api", "/a"), "/a");

        let mut default = RouteCap::default();
        let routes: Vec<String> = (0..=DEFAULT_ROUTE_LIMIT)
            .map(|n| format!("/r{n}"))
            .collect();
        let admitted = routes
            .iter()
            .filter(|route| default.admit("api", route) != OTHER_ROUTE)
            .count();
        assert_eq!(admitted, DEFAULT_ROUTE_LIMIT);
    }

    proptest! {
        #[test]
        fn templating_a_route_changes_nothing(
            endpoint in "(https?://[a-z.]{1,8})?(/[a-zA-Z0-9._~%@:;+ -]{0,14}){0,5}/?(\\?[a-z=&/0-9]{0,6})?"
        ) {
            let route = template(&endpoint).into_owned();
            prop_assert_eq!(template(&route), route.as_str());
        }
    }
}
