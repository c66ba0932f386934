//! Inputs: what the command-line arguments name. `-` is stdin, a directory contributes
//! its files, anything with `*?[` is a glob. A path named on the command line is read
//! whatever it is (a FIFO like stdin); what a directory or a glob leads to is taken only
//! when it is a regular file. FIFOs, sockets, devices and symbolic link loops found
//! there are skipped with a warning, logctl's own outputs silently, and an unreadable
//! entry is noted for the load to report while everything else is loaded. A directory
//! contributes only files with log names (`NameFilter`), unless `--include` chooses others.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, FileType, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// One input to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A path: a regular file, or a FIFO or device named on the command line.
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn display_name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }

    /// Whether the input can be read again after a failed load: a file can, stdin and
    /// a pipe or device named as a file cannot (what they gave is gone).
    pub fn can_be_read_again(&self) -> bool {
        match self {
            Input::File(path) => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
            Input::Stdin => false,
        }
    }

    /// Size on disk, for the progress bar.
    pub fn size_on_disk(&self) -> Option<u64> {
        match self {
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Stdin => None,
        }
    }
}

/// Which files found in a directory are inputs: by default those with a log name
/// (`*.ndjson`, `*.jsonl`, `*.json`, `*.log`, each also compressed as `.gz` or `.zst`
/// and rotated as `.1` or `-20261124`), else those matching `--include` globs.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    include: Vec<glob::Pattern>,
}

/// The extensions of a log name, after any compression and rotation suffix.
const LOG_EXTENSIONS: [&str; 4] = ["ndjson", "jsonl", "json", "log"];

impl NameFilter {
    /// Files matching any of these globs (on the file name), instead of log names.
    pub fn including(globs: &[String]) -> crate::Result<NameFilter> {
        let include = globs
            .iter()
            .map(|text| {
                glob::Pattern::new(text)
                    .map_err(|e| Error::usage(format!("--include `{text}`: {e}")))
            })
            .collect::<crate::Result<_>>()?;
        Ok(NameFilter { include })
    }

    /// What a directory holds that is loaded, for messages.
    pub fn describe(&self) -> String {
        if self.include.is_empty() {
            "files with a log name (*.ndjson, *.jsonl, *.json, *.log, also .gz or .zst, \
             also rotated as .1 or -20261124)"
                .to_string()
        } else {
            let globs: Vec<&str> = self.include.iter().map(glob::Pattern::as_str).collect();
            format!("files matching --include {}", globs.join(", "))
        }
    }

    fn admit(&self, name: &str) -> bool {
        if !self.include.is_empty() {
            return self
                .include
                .iter()
                .any(|pattern| pattern.matches_with(name, NAME_MATCH));
        }
        let name = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".zst"))
            .unwrap_or(name);
        let name = strip_rotation(name);
        name.rsplit_once('.').is_some_and(|(stem, extension)| {
            !stem.is_empty() && LOG_EXTENSIONS.contains(&extension)
        })
    }
}

/// `app.log.3` and `app.log-20261124` (logrotate's numbered and dated copies) as `app.log`.
fn strip_rotation(name: &str) -> &str {
    let Some(cut) = name.rfind(['.', '-']) else {
        return name;
    };
    let suffix = &name[cut + 1..];
    if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
        &name[..cut]
    } else {
        name
    }
}

/// What the arguments expand to.
#[derive(Debug, Default)]
pub struct Expansion {
    pub inputs: Vec<Input>,
    /// Entries left out by rule, each with the reason: warnings.
    pub skipped: Vec<String>,
    /// Entries that could not be read, each with the reason: the load goes on without
    /// them and reports them as source errors.
    pub unreadable: Vec<String>,
    /// Files in directories left out for their names.
    pub left_out: usize,
}

/// Expands the command-line arguments: `-` is stdin, a directory contributes its
/// files (not hidden ones, recursively, in name order), anything with `*?[` is a glob
/// (matched as a shell does, with `**` for any depth of directories); a directory's
/// files count only when `names` admits them. `rejects`, the reject file, is never an
/// input, even when this run creates it after the expansion. Arguments that lead to no
/// input at all are an `Error::NoInput`.
pub fn expand(
    arguments: &[String],
    rejects: Option<&Path>,
    names: &NameFilter,
) -> crate::Result<Expansion> {
    let mut expander = Expander {
        own_outputs: OwnOutputs::of_this_run(rejects),
        names,
        expansion: Expansion::default(),
        files: HashSet::new(),
        directories: HashSet::new(),
    };
    for argument in arguments {
        expander.argument(argument)?;
    }
    let expansion = expander.expansion;
    if expansion.inputs.is_empty() && expansion.unreadable.is_empty() {
        let left_out = match expansion.left_out {
            0 => String::new(),
            1 => "; 1 other file was left out for its name".to_string(),
            n => format!("; {n} other files were left out for their names"),
        };
        return Err(Error::NoInput(format!(
            "nothing to load: {} held no {}{left_out}\n\
             hint: name files on the command line, or choose a directory's files with \
             --include GLOB (e.g. --include '*.txt')",
            arguments.join(" "),
            names.describe()
        )));
    }
    Ok(expansion)
}

/// A file's identity on this machine: device and inode.
type FileId = (u64, u64);

fn id_of(metadata: &Metadata) -> FileId {
    (metadata.dev(), metadata.ino())
}

/// Directories that hold an entry, from its own up to `/`, by identity and path: an
/// entry that leads back to one of them is a symbolic link loop.
type Holders = Vec<(FileId, PathBuf)>;

/// A directory as a path to list or stat: the empty path (a bare name's directory, or
/// a relative glob's start) is `.`.
fn as_directory(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// The directories that really hold `path`: its directory, found through symbolic
/// links, and every directory above that.
fn real_holders(path: &Path) -> Holders {
    let Some(Ok(real)) = path
        .parent()
        .map(|parent| fs::canonicalize(as_directory(parent)))
    else {
        return Holders::new();
    };
    real.ancestors()
        .filter_map(|dir| Some((id_of(&fs::metadata(dir).ok()?), dir.to_path_buf())))
        .collect()
}

/// What logctl itself writes, which is never an input: the reject file (by identity,
/// and by directory and name for when this run creates it after the check), and
/// stdout or stderr redirected to a file.
struct OwnOutputs {
    files: Vec<FileId>,
    reject_place: Option<(FileId, OsString)>,
}

impl OwnOutputs {
    fn of_this_run(rejects: Option<&Path>) -> OwnOutputs {
        let mut files: Vec<FileId> = [io::stdout().as_fd(), io::stderr().as_fd()]
            .into_iter()
            .filter_map(redirected_file)
            .collect();
        let mut reject_place = None;
        if let Some(path) = rejects {
            files.extend(fs::metadata(path).ok().map(|metadata| id_of(&metadata)));
            reject_place = directory_id(path)
                .zip(path.file_name())
                .map(|(directory, name)| (directory, name.to_owned()));
        }
        OwnOutputs {
            files,
            reject_place,
        }
    }

    fn include(&self, path: &Path, metadata: &Metadata) -> bool {
        if self.files.contains(&id_of(metadata)) {
            return true;
        }
        let Some((directory, name)) = &self.reject_place else {
            return false;
        };
        path.file_name() == Some(name.as_os_str()) && directory_id(path) == Some(*directory)
    }
}

/// The identity of the directory that holds `path`.
fn directory_id(path: &Path) -> Option<FileId> {
    let metadata = fs::metadata(as_directory(path.parent()?)).ok()?;
    Some(id_of(&metadata))
}

/// The file behind stdout or stderr, when they are redirected to one.
fn redirected_file(fd: BorrowedFd<'_>) -> Option<FileId> {
    let metadata = fs::File::from(fd.try_clone_to_owned().ok()?)
        .metadata()
        .ok()?;
    metadata.is_file().then(|| id_of(&metadata))
}

/// Why an input cannot be read, and what to do about it.
pub(crate) fn cannot_read(name: &str, error: &io::Error) -> String {
    let hint = if error.kind() == io::ErrorKind::PermissionDenied {
        "; give this user read access to it, or leave it out of the inputs"
    } else {
        ""
    };
    format!("cannot read {name}: {error}{hint}")
}

/// What a file that is not a regular one is, for a warning.
fn kind(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_hidden(name: &OsString) -> bool {
    name.as_encoded_bytes().starts_with(b".")
}

/// How a glob's components match names: hidden names only a pattern that starts with a
/// dot, as in a shell.
const NAME_MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

struct Expander<'a> {
    own_outputs: OwnOutputs,
    names: &'a NameFilter,
    expansion: Expansion,
    /// Files taken and directories walked so far: each comes once, whatever the path.
    files: HashSet<FileId>,
    directories: HashSet<FileId>,
}

impl Expander<'_> {
    fn argument(&mut self, argument: &str) -> crate::Result<()> {
        if argument == "-" {
            self.expansion.inputs.push(Input::Stdin);
            return Ok(());
        }
        let path = Path::new(argument);
        match fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => {
                let mut holders = fs::canonicalize(path)
                    .map(|real| real_holders(&real))
                    .unwrap_or_default();
                self.directory(path, id_of(&metadata), &mut holders);
            }
            Ok(metadata) if self.own_outputs.include(path, &metadata) => {
                return Err(Error::usage(format!(
                    "{argument} is where this load writes (its reject file, or its redirected \
                     output), so it cannot be an input too; load it with another --rejects, or \
                     another redirection"
                )));
            }
            Ok(metadata) => self.file(path, &metadata),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if !argument.contains(['*', '?', '[']) {
                    return Err(Error::usage(format!(
                        "no such file or directory: {argument}"
                    )));
                }
                let matches = self.glob(argument)?;
                if matches.is_empty() {
                    return Err(Error::NoInput(format!(
                        "nothing to load: pattern `{argument}` matches no files"
                    )));
                }
                for path in matches {
                    self.found(&path, None);
                }
            }
            Err(error) => self.unreadable(path, &error),
        }
        Ok(())
    }

    /// An entry a directory or a glob led to; `holders` are the directories of the walk
    /// that holds it, or None for a glob's match, whose holders are found when needed.
    fn found(&mut self, path: &Path, holders: Option<&mut Holders>) {
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                return self.skip(path, "a symbolic link loop");
            }
            // A file removed since it was listed is simply gone.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if fs::symlink_metadata(path).is_ok() {
                    self.skip(path, "a symbolic link to nothing");
                }
                return;
            }
            Err(error) => return self.unreadable(path, &error),
        };
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            match holders {
                Some(holders) => self.directory(path, id_of(&metadata), holders),
                None => self.directory(path, id_of(&metadata), &mut real_holders(path)),
            }
        } else if !file_type.is_file() {
            self.skip(
                path,
                &format!(
                    "{}, not a regular file (name it on the command line to read it)",
                    kind(file_type)
                ),
            );
        } else if self.own_outputs.include(path, &metadata) {
            // logctl's own outputs are left out silently.
        } else if holders.is_some() && !self.names.admit(&name_of(path)) {
            self.expansion.left_out += 1;
        } else {
            self.file(path, &metadata);
        }
    }

    /// Walks a directory (once, however many paths lead to it) for its files.
    fn directory(&mut self, path: &Path, id: FileId, holders: &mut Holders) {
        if self.is_loop(path, id, holders) || !self.directories.insert(id) {
            return;
        }
        let names = self.entries(path);
        holders.push((id, path.to_path_buf()));
        for name in names.into_iter().filter(|name| !is_hidden(name)) {
            self.found(&path.join(name), Some(&mut *holders));
        }
        holders.pop();
    }

    /// Whether a directory is one that holds it, reached through a symbolic link; it is
    /// then skipped with a warning.
    fn is_loop(&mut self, path: &Path, id: FileId, holders: &Holders) -> bool {
        let Some((_, holder)) = holders.iter().find(|(holder, _)| *holder == id) else {
            return false;
        };
        let reason = format!(
            "a symbolic link loop (it leads back to {})",
            holder.display()
        );
        self.skip(path, &reason);
        true
    }

    fn file(&mut self, path: &Path, metadata: &Metadata) {
        if self.files.insert(id_of(metadata)) {
            self.expansion.inputs.push(Input::File(path.to_path_buf()));
        }
    }

    /// The names in a directory, in order; an unreadable directory is noted and has none.
    fn entries(&mut self, dir: &Path) -> Vec<OsString> {
        let mut names = Vec::new();
        match fs::read_dir(as_directory(dir)) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => names.push(entry.file_name()),
                        Err(error) => {
                            self.unreadable(dir, &error);
                            break;
                        }
                    }
                }
            }
            // Gone since it was found, or a file that a glob's earlier component matched.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                self.skip(dir, "a symbolic link loop");
            }
            Err(error) => self.unreadable(dir, &error),
        }
        names.sort();
        names
    }

    /// The paths a glob matches, found component by component as a shell does: only
    /// the directories its components reach are listed, and `**` walks them with the
    /// same loop detection as a directory.
    fn glob(&mut self, pattern: &str) -> crate::Result<Vec<PathBuf>> {
        let mut candidates = vec![PathBuf::new()];
        for component in Path::new(pattern).components() {
            let text = component.as_os_str().to_string_lossy();
            if text == "**" {
                let mut below = Vec::new();
                for candidate in &candidates {
                    self.directories_under(candidate, &mut real_holders(candidate), &mut below);
                }
                candidates = below;
            } else if text.contains(['*', '?', '[']) {
                let names = glob::Pattern::new(&text)
                    .map_err(|e| Error::usage(format!("bad pattern `{pattern}`: {e}")))?;
                let mut matched = Vec::new();
                for candidate in &candidates {
                    for name in self.entries(candidate) {
                        if names.matches_with(&name.to_string_lossy(), NAME_MATCH) {
                            matched.push(candidate.join(name));
                        }
                    }
                }
                matched.retain(|path| !self.leads_back(path));
                candidates = matched;
            } else {
                for candidate in &mut candidates {
                    candidate.push(component);
                }
            }
        }
        candidates.retain(|path| fs::symlink_metadata(path).is_ok());
        candidates.sort();
        candidates.dedup();
        Ok(candidates)
    }

    /// Whether a glob's match is a symbolic link back to a directory that holds it,
    /// which is then skipped with a warning.
    fn leads_back(&mut self, path: &Path) -> bool {
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        match fs::metadata(path) {
            Ok(metadata) if is_link && metadata.is_dir() => {
                self.is_loop(path, id_of(&metadata), &real_holders(path))
            }
            _ => false,
        }
    }

    /// `dir` and every directory below it, hidden ones left out: what `**` matches.
    fn directories_under(&mut self, dir: &Path, holders: &mut Holders, into: &mut Vec<PathBuf>) {
        let Ok(metadata) = fs::metadata(as_directory(dir)) else {
            return;
        };
        if !metadata.is_dir() || self.is_loop(dir, id_of(&metadata), holders) {
            return;
        }
        into.push(dir.to_path_buf());
        let names = self.entries(dir);
        holders.push((id_of(&metadata), dir.to_path_buf()));
        for name in names.into_iter().filter(|name| !is_hidden(name)) {
            self.directories_under(&dir.join(name), holders, into);
        }
        holders.pop();
    }

    fn skip(&mut self, path: &Path, reason: &str) {
        let warning = format!("skipped {}: {reason}", path.display());
        if !self.expansion.skipped.contains(&warning) {
            self.expansion.skipped.push(warning);
        }
    }

    fn unreadable(&mut self, path: &Path, error: &io::Error) {
        let message = cannot_read(&path.display().to_string(), error);
        if !self.expansion.unreadable.contains(&message) {
            self.expansion.unreadable.push(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fifo(path: &Path) {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    }

    fn files(expansion: &Expansion) -> Vec<String> {
        expansion
            .inputs
            .iter()
            .map(|input| input.display_name())
            .collect()
    }

    /// logs/{app.ndjson, pipe (a FIFO), a -> ., b -> ../logs, sub/deep.ndjson, .hidden}
    fn odd_directory() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        fs::create_dir_all(logs.join("sub")).unwrap();
        fs::write(logs.join("app.ndjson"), "{}\n").unwrap();
        fs::write(logs.join("sub/deep.ndjson"), "{}\n").unwrap();
        fs::write(logs.join(".hidden"), "{}\n").unwrap();
        fifo(&logs.join("pipe"));
        symlink(".", logs.join("a")).unwrap();
        symlink("../logs", logs.join("b")).unwrap();
        (dir, logs)
    }

    #[test]
    fn directories_and_globs_skip_fifos_and_symbolic_link_loops() {
        let (_dir, logs) = odd_directory();
        let l = logs.display();
        let app = format!("{l}/app.ndjson");
        let deep = format!("{l}/sub/deep.ndjson");
        let hidden = format!("{l}/.hidden");
        for (pattern, expected) in [
            (format!("{l}"), vec![app.as_str(), &deep]),
            (format!("{l}/*"), vec![&app, &deep]),
            (format!("{l}/**/*.ndjson"), vec![&app, &deep]),
            (format!("{l}/**"), vec![&app, &deep]),
            (format!("{l}/.*"), vec![&hidden]),
        ] {
            let expansion =
                expand(std::slice::from_ref(&pattern), None, &NameFilter::default()).unwrap();
            assert_eq!(files(&expansion), expected, "{pattern}");
            assert!(expansion.unreadable.is_empty());
            if pattern.ends_with(".ndjson") {
                continue;
            }
            let mut warned: Vec<&str> = expansion.skipped.iter().map(String::as_str).collect();
            warned.sort();
            if pattern.ends_with(".*") {
                assert!(warned.is_empty(), "{warned:?}");
                continue;
            }
            assert_eq!(
                warned,
                [
                    format!("skipped {l}/a: a symbolic link loop (it leads back to {l})"),
                    format!("skipped {l}/b: a symbolic link loop (it leads back to {l})"),
                    format!(
                        "skipped {l}/pipe: a FIFO, not a regular file (name it on the command line to read it)"
                    ),
                ],
                "{pattern}"
            );
        }
    }

    #[test]
    fn a_fifo_named_on_the_command_line_is_an_input_and_each_file_comes_once() {
        let (_dir, logs) = odd_directory();
        let pipe = logs.join("pipe").display().to_string();
        let app = logs.join("app.ndjson").display().to_string();
        let through_link = logs.join("a/app.ndjson").display().to_string();
        let expansion = expand(
            &[pipe.clone(), app.clone(), through_link],
            None,
            &NameFilter::default(),
        )
        .unwrap();
        assert_eq!(files(&expansion), [pipe, app]);
        assert!(expansion.skipped.is_empty());
    }

    #[test]
    fn the_reject_file_is_never_an_input_even_when_created_after_the_expansion_began() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app.ndjson"), "{}\n").unwrap();
        let rejects = dir.path().join("rejects.ndjson");
        let own_outputs = OwnOutputs::of_this_run(Some(&rejects));
        fs::write(&rejects, "{}\n").unwrap();
        let through_dot = dir.path().join(".").join("rejects.ndjson");
        assert!(own_outputs.include(&through_dot, &fs::metadata(&rejects).unwrap()));
        let app = dir.path().join("app.ndjson");
        assert!(!own_outputs.include(&app, &fs::metadata(&app).unwrap()));

        let arguments = [dir.path().display().to_string()];
        let expansion = expand(&arguments, Some(&rejects), &NameFilter::default()).unwrap();
        assert_eq!(files(&expansion), [app.display().to_string()]);
        assert!(expansion.skipped.is_empty(), "skipped silently");
        let named = [rejects.display().to_string()];
        assert!(matches!(
            expand(&named, Some(&rejects), &NameFilter::default()),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn directories_take_log_names_unless_told_otherwise() {
        let names = NameFilter::default();
        for name in [
            "app.ndjson",
            "app.jsonl.gz",
            "events.json",
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log-20261124.zst",
            "app.ndjson.zst",
        ] {
            assert!(names.admit(name), "{name}");
        }
        for name in [
            "readme.txt",
            "notes.md",
            ".log",
            "app.log.old",
            "log",
            "app.gz",
        ] {
            assert!(!names.admit(name), "{name}");
        }
        let text = NameFilter::including(&["*.txt".to_string()]).unwrap();
        assert!(text.admit("readme.txt") && !text.admit("app.ndjson"));
        assert!(matches!(
            NameFilter::including(&["[".to_string()]),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn a_directory_without_log_files_is_no_input() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("readme.txt"), "hello\n").unwrap();
        let arguments = [dir.path().display().to_string()];
        let Err(Error::NoInput(message)) = expand(&arguments, None, &NameFilter::default()) else {
            panic!("a directory without log files is no input");
        };
        assert!(message.contains("1 other file was left out"), "{message}");
        fs::write(dir.path().join("app.log"), "{}\n").unwrap();
        let expansion = expand(&arguments, None, &NameFilter::default()).unwrap();
        assert_eq!(
            files(&expansion),
            [dir.path().join("app.log").display().to_string()]
        );
        assert_eq!(expansion.left_out, 1);
        let pattern = [format!("{}/*.ndjson", dir.path().display())];
        assert!(matches!(
            expand(&pattern, None, &NameFilter::default()),
            Err(Error::NoInput(_))
        ));
    }
}
