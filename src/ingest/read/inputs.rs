//! Inputs: what the command-line arguments name. `-` is stdin, a directory contributes
//! its files, anything with `*?[` is a glob.

use std::path::{Path, PathBuf};

use crate::Error;

/// One input to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
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

/// Expands the command-line arguments: `-` is stdin, a directory contributes its
/// files (not hidden ones, recursively, in name order), anything with `*?[` is a glob.
pub fn expand(arguments: &[String]) -> crate::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for argument in arguments {
        if argument == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = Path::new(argument);
        if path.exists() {
            add_path(path, &mut inputs)?;
            continue;
        }
        if !argument.contains(['*', '?', '[']) {
            return Err(Error::Usage(format!(
                "no such file or directory: {argument}"
            )));
        }
        let matches = glob::glob(argument)
            .map_err(|e| Error::Usage(format!("bad pattern `{argument}`: {e}")))?;
        let mut matched: Vec<PathBuf> = matches.flatten().collect();
        if matched.is_empty() {
            return Err(Error::Usage(format!(
                "pattern `{argument}` matches no files"
            )));
        }
        matched.sort();
        for path in matched {
            add_path(&path, &mut inputs)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|input| match input {
        Input::File(path) => seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())),
        Input::Stdin => true,
    });
    Ok(inputs)
}

fn add_path(path: &Path, inputs: &mut Vec<Input>) -> crate::Result<()> {
    if !path.is_dir() {
        inputs.push(Input::File(path.to_path_buf()));
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Error::Usage(format!("cannot read directory {}: {e}", path.display())))?;
    let mut children: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|child| {
            !child
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    children.sort();
    for child in children {
        add_path(&child, inputs)?;
    }
    Ok(())
}
