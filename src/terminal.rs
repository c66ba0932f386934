//! How output meets the terminal: its width, colour and character set, decided once per
//! run from `--width`, `--color`, `NO_COLOR`, `COLUMNS`, the locale and whether stdout
//! and stderr are terminals. Everything that prints for people (report tables, the
//! progress bar, error messages) asks here, so they never disagree.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`: whether to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal that supports it, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// How text is shown on one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    /// Columns to fit in, or None for no limit: piped output without `--width` or
    /// `COLUMNS` is never cut.
    pub width: Option<usize>,
    pub color: bool,
    /// Whether the stream is a terminal: tables get box drawing, loads a progress bar.
    pub terminal: bool,
    /// Whether the terminal takes UTF-8 (box drawing, block characters); else ASCII.
    pub unicode: bool,
}

impl Display {
    /// Plain text with no width limit: what a file or a pipe gets by default.
    pub const PLAIN: Display = Display {
        width: None,
        color: false,
        terminal: false,
        unicode: false,
    };
}

/// The width a terminal is taken to have when it does not say.
const DEFAULT_TERMINAL_WIDTH: usize = 80;

#[derive(Debug, Clone, Copy)]
struct Choices {
    color: ColorChoice,
    width: Option<usize>,
}

static CHOICES: OnceLock<Choices> = OnceLock::new();

/// Records the global flags, once, before anything is printed. Colour on stderr is also
/// handed to the progress bar's library, which would otherwise decide for itself.
pub fn configure(color: ColorChoice, width: Option<usize>) {
    let _ = CHOICES.set(Choices { color, width });
    console::set_colors_enabled_stderr(stderr().color);
}

fn choices() -> Choices {
    *CHOICES.get_or_init(|| Choices {
        color: ColorChoice::Auto,
        width: None,
    })
}

/// How stdout shows text: width from `--width`, else the terminal's, else `COLUMNS`.
pub fn stdout() -> Display {
    let terminal = std::io::stdout().is_terminal();
    let choices = choices();
    decide(
        choices,
        terminal,
        || terminal_size::terminal_size_of(std::io::stdout()),
        supports_color::Stream::Stdout,
    )
}

/// How stderr shows text (the progress bar, messages).
pub fn stderr() -> Display {
    let terminal = std::io::stderr().is_terminal();
    decide(
        choices(),
        terminal,
        || terminal_size::terminal_size_of(std::io::stderr()),
        supports_color::Stream::Stderr,
    )
}

fn decide(
    choices: Choices,
    terminal: bool,
    size: impl FnOnce() -> Option<(terminal_size::Width, terminal_size::Height)>,
    stream: supports_color::Stream,
) -> Display {
    let from_terminal = || {
        terminal
            .then(size)
            .flatten()
            .map(|(width, _)| usize::from(width.0))
            .filter(|&width| width > 0)
    };
    let width = choices
        .width
        .or_else(from_terminal)
        .or_else(columns_variable)
        .or(terminal.then_some(DEFAULT_TERMINAL_WIDTH));
    let color = match choices.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        // supports-color says no when NO_COLOR is set, TERM is dumb or the stream is
        // not a terminal.
        ColorChoice::Auto => supports_color::on_cached(stream).is_some(),
    };
    Display {
        width,
        color,
        terminal,
        unicode: terminal && locale_is_utf8(),
    }
}

fn columns_variable() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&width| width > 0)
}

/// Whether the locale's character set is UTF-8, as the C library decides it: the first
/// of LC_ALL, LC_CTYPE and LANG that is set.
fn locale_is_utf8() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .is_some_and(|locale| {
            let locale = locale.to_ascii_lowercase();
            locale.contains("utf-8") || locale.contains("utf8")
        })
}
