//! libpq's connection service files (`pg_service.conf`): where they are looked for, and
//! how a service's `[name]` section is read (`parseServiceInfo` and `parseServiceFile`
//! in libpq's fe-connect.c).

use std::path::{Path, PathBuf};

use super::conninfo::is_space;
use super::{Place, Variables};
use crate::Error;

/// Where libpq looks when `PGSYSCONFDIR` is unset: the directory it was built with,
/// which is this one in Debian's and Ubuntu's packages.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// One `keyword=value` line of a service's section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub keyword: String,
    pub value: String,
    pub line: usize,
}

/// A service's section and the file it was found in.
#[derive(Debug)]
pub struct Service {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

/// The files searched for a service, in order: `PGSERVICEFILE` (else
/// `~/.pg_service.conf`), then `pg_service.conf` in `PGSYSCONFDIR`.
pub fn search_path(variables: Variables) -> Vec<PathBuf> {
    let user_file = variables("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".pg_service.conf")));
    let system_dir = variables("PGSYSCONFDIR").unwrap_or_else(|| DEFAULT_SYSCONFDIR.into());
    user_file
        .into_iter()
        .chain([Path::new(&system_dir).join("pg_service.conf")])
        .collect()
}

/// The section of service `name` in the first of `files` that has one. As in libpq, a
/// file that does not exist is skipped, but one that exists and cannot be read is an error.
pub fn find(name: &str, files: &[PathBuf]) -> Result<Option<Service>, Error> {
    for path in files {
        if !path.exists() {
            continue;
        }
        let contents =
            std::fs::read_to_string(path).map_err(|error| Error::UnreadableServiceFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        if let Some(entries) = section(&contents, name, path)? {
            return Ok(Some(Service {
                path: path.clone(),
                entries,
            }));
        }
    }
    Ok(None)
}

/// The `keyword=value` lines of section `[name]`, if the file has one. Lines are trimmed,
/// `#` starts a comment line, and the text either side of the first `=` is taken as is.
fn section(contents: &str, name: &str, path: &Path) -> Result<Option<Vec<Entry>>, Error> {
    let mut entries = None;
    for (index, line) in contents.lines().enumerate() {
        let line = line.trim_matches(is_space);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if entries.is_some() {
                break;
            }
            // libpq compares the name and the `]` after it, ignoring whatever follows.
            if header
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(']'))
            {
                entries = Some(Vec::new());
            }
            continue;
        }
        let Some(entries) = entries.as_mut() else {
            continue;
        };
        let place = || Place::Service {
            name: name.to_string(),
            path: path.to_path_buf(),
            line: index + 1,
        };
        let Some((keyword, value)) = line.split_once('=') else {
            return Err(Error::BadSetting {
                place: place().to_string(),
                problem: "expected keyword=value".into(),
            });
        };
        if keyword == "service" {
            return Err(Error::BadSetting {
                place: place().to_string(),
                problem: "a service cannot name another service".into(),
            });
        }
        entries.push(Entry {
            keyword: keyword.to_string(),
            value: value.to_string(),
            line: index + 1,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(keyword: &str, value: &str, line: usize) -> Entry {
        Entry {
            keyword: keyword.into(),
            value: value.into(),
            line,
        }
    }

    #[test]
    fn reads_only_the_named_section_as_libpq_does() {
        let file = "host=ignored\n\
                    [logs-old]\nhost=old\n\
                    # comment\n\
                    [logs] trailing text\n  host=db.example  \n\n#port=1\nport=6543\napplication_name= a b\n\
                    [other]\nhost=other\n";
        let path = Path::new("/etc/pg_service.conf");
        assert_eq!(
            section(file, "logs", path).unwrap(),
            Some(vec![
                entry("host", "db.example", 6),
                entry("port", "6543", 9),
                entry("application_name", " a b", 10),
            ])
        );
        assert_eq!(section(file, "log", path).unwrap(), None);
        assert_eq!(section(file, "missing", path).unwrap(), None);
    }

    #[test]
    fn a_bad_line_in_the_section_names_the_file_and_line() {
        let path = Path::new("/etc/pg_service.conf");
        let error = section("[logs]\nhost=h\njust words\n", "logs", path).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.contains("service `logs` in /etc/pg_service.conf, line 3"),
            "{shown}"
        );
        let nested = section("[logs]\nservice=other\n", "logs", path).unwrap_err();
        assert!(nested.to_string().contains("line 2"), "{nested}");
        assert!(section("[other]\njust words\n", "logs", path).is_ok());
    }

    #[test]
    fn the_user_file_comes_first_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.conf");
        let system = dir.path().join("pg_service.conf");
        std::fs::write(&user, "[mine]\nhost=user-file\n").unwrap();
        std::fs::write(&system, "[mine]\nhost=system-file\n[shared]\nhost=shared\n").unwrap();
        let variables = |name: &str| match name {
            "PGSERVICEFILE" => Some(user.display().to_string()),
            "PGSYSCONFDIR" => Some(dir.path().display().to_string()),
            _ => None,
        };
        let files = search_path(&variables);
        assert_eq!(files, vec![user.clone(), system.clone()]);

        let mine = find("mine", &files).unwrap().unwrap();
        assert_eq!(
            (mine.path, mine.entries[0].value.as_str()),
            (user.clone(), "user-file")
        );
        let shared = find("shared", &files).unwrap().unwrap();
        assert_eq!(shared.path, system);
        assert!(find("absent", &files).unwrap().is_none());

        let missing_user_file = [dir.path().join("absent.conf"), system.clone()];
        assert!(find("shared", &missing_user_file).unwrap().is_some());

        let unreadable = find("mine", &[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            matches!(&unreadable, Error::UnreadableServiceFile { path, .. } if *path == dir.path().display().to_string()),
            "{unreadable}"
        );
    }
}
