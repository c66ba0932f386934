//! Password lookup in libpq's password file (`passfile`/`PGPASSFILE`, else `~/.pgpass`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The password for the first matching line of `file` (else `~/.pgpass`), as libpq finds
/// it: fields `host:port:database:user:password`, `*` matches anything, `\:` and `\\` escape.
pub fn lookup(
    file: Option<&Path>,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let path = file
        .map(Path::to_path_buf)
        .or_else(|| dirs::home_dir().map(|home| home.join(".pgpass")))?;
    let metadata = std::fs::metadata(&path).ok()?;
    if metadata.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "logctl: warning: password file {} has group or world access; ignoring it (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    let contents = std::fs::read_to_string(&path).ok()?;
    find(&contents, host, &port.to_string(), dbname, user)
}

fn find(contents: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    let wanted = [host, port, dbname, user];
    contents
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, value)| field == "*" || field == value);
            matches.then(|| fields[4].clone())
        })
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    fields.last_mut().expect("never empty").push(escaped);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn matches_wildcards_and_escapes() {
        let file = "# comment\nother:5432:*:*:nope\ndb.example:*:logs:alice:pa\\:ss\\\\word\n*:*:*:*:fallback\n";
        assert_eq!(
            find(file, "db.example", "6543", "logs", "alice").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            find(file, "elsewhere", "5432", "x", "y").as_deref(),
            Some("fallback")
        );
        assert_eq!(find("a:1:b:c:d\n", "a", "2", "b", "c"), None);
    }
}
