//! What a user finds before reading any code: each command's `--help` with examples and
//! its exit codes, the exit codes in the README, shell completions that bash loads, and
//! manual pages that man renders without a warning.

mod common;

use common::*;

/// Every subcommand, as `logctl help` lists them.
fn commands() -> Vec<String> {
    let help = stdout(&logctl_bare(&["--help"]).output().unwrap());
    let listed: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(listed.len() >= 10, "{help}");
    listed
}

#[test]
fn every_command_shows_examples_and_its_exit_codes() {
    for command in commands() {
        let output = logctl_bare(&[&command, "--help"]).output().unwrap();
        assert_success(&output);
        let help = stdout(&output);
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`{command} --help` has no examples:\n{help}"));
        assert!(
            examples.contains(&format!("logctl {command}")),
            "{command}: {examples}"
        );
        assert!(
            help.contains("Exit codes:\n  0    success"),
            "{command}: {help}"
        );
    }
    let load = stdout(&logctl_bare(&["load", "--help"]).output().unwrap());
    for code in ["4", "5", "6", "130"] {
        assert!(load.contains(&format!("\n  {code:<4} ")), "{load}");
    }
    let slow = stdout(&logctl_bare(&["slow", "--help"]).output().unwrap());
    assert!(
        !slow.contains("\n  5    "),
        "slow never rejects lines: {slow}"
    );
}

#[test]
fn the_readme_lists_every_exit_code_the_help_does() {
    let help = stdout(&logctl_bare(&["--help"]).output().unwrap());
    let codes: Vec<&str> = help
        .split("Exit codes:\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.parse::<u8>().is_ok())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "130"]);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in codes {
        assert!(
            readme.contains(&format!("\n| {code} | ")),
            "README lacks exit code {code}"
        );
    }
}

#[test]
fn completions_are_written_for_each_shell_and_bash_loads_them() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = logctl_bare(&["completions", shell]).output().unwrap();
        assert_success(&output);
        let script = stdout(&output);
        assert!(
            script.contains("logctl") && script.contains("database-url") && script.contains("slow"),
            "{shell}: {script}"
        );
    }
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{}' completions bash) && complete -p logctl",
            env!("CARGO_BIN_EXE_logctl")
        ))
        .output()
        .unwrap();
    assert_success(&bash);
    assert!(
        stdout(&bash).contains("-F _logctl logctl"),
        "{}",
        stdout(&bash)
    );
    assert_exit(&logctl_bare(&["completions", "tcsh"]).output().unwrap(), 2);
}

/// Text that man drew bold or underlined on a pipe (`X\x08X`, `_\x08X`) as plain text.
fn plain(text: &str) -> String {
    let mut plain = String::new();
    for character in text.chars() {
        if character == '\x08' {
            plain.pop();
        } else {
            plain.push(character);
        }
    }
    plain
}

#[test]
fn man_renders_every_page_without_a_warning() {
    let dir = scratch_dir("man");
    let output = logctl_bare(&["man", "--output-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for command in commands() {
        assert!(
            pages.contains(&format!("logctl-{command}.1")),
            "{command}: {pages:?}"
        );
    }
    let printed = logctl_bare(&["man", "load"]).output().unwrap();
    assert_success(&printed);
    assert_eq!(
        printed.stdout,
        std::fs::read(dir.join("logctl-load.1")).unwrap(),
        "`logctl man load` prints the page --output-dir writes"
    );
    for page in pages {
        let rendered = std::process::Command::new("man")
            .args(["--warnings", "-l"])
            .arg(dir.join(&page))
            .env("MANWIDTH", "80")
            .output()
            .expect("man is installed (scripts/test.sh installs Debian's man-db)");
        assert_success(&rendered);
        assert_eq!(stderr(&rendered), "", "{page}");
        let text = plain(&stdout(&rendered));
        assert!(text.contains("SYNOPSIS"), "{page}: {text}");
    }
    let logctl = std::process::Command::new("man")
        .args(["--warnings", "-l", dir.join("logctl.1").to_str().unwrap()])
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    assert!(
        stdout(&logctl).contains("Exit codes"),
        "{}",
        stdout(&logctl)
    );
    assert_exit(&logctl_bare(&["man", "frobnicate"]).output().unwrap(), 2);
}
