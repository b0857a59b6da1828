//! A configuration error: the file, the line and column, what is wrong, and the line itself.

use std::fmt;
use std::path::PathBuf;

use crate::span;

/// Where in the file: 1-based line, and 1-based column counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

/// A configuration file that cannot be used, and why. Shown as
/// `FILE:LINE:COLUMN: message`, then the line with a caret under the column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Where, when the error is about a place in the file (not for an unreadable file).
    pub position: Option<Position>,
    /// What is wrong, and what would be right.
    pub message: String,
    /// The text of the line at `position`.
    pub source_line: Option<String>,
}

impl ConfigError {
    /// An error about the byte `offset` of `text`, the contents of `file`.
    pub(crate) fn at(
        file: &std::path::Path,
        text: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span::line_column(text, offset);
        ConfigError {
            file: file.to_path_buf(),
            position: Some(Position { line, column }),
            message: message.into(),
            source_line: span::line_text(text, line).map(str::to_string),
        }
    }

    /// An error about the file as a whole.
    pub(crate) fn whole_file(file: &std::path::Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            position: None,
            message: message.into(),
            source_line: None,
        }
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.line)
    }

    /// The 1-based column, when known.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|p| p.column)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote values from the file: escaped like the line below.
        let file = self.file.display();
        let message = nodedoc_model::text::terminal(&self.message);
        let Some(Position { line, column }) = self.position else {
            return write!(f, "{file}: {message}");
        };
        write!(f, "{file}:{line}:{column}: {message}")?;
        if let Some(text) = &self.source_line {
            // The line is the user's own file, but escape it anyway: a control character in a
            // string would otherwise act on the terminal.
            let gutter = line.to_string().len();
            let shown: String = text.chars().take(column - 1).collect();
            let pad = nodedoc_model::text::terminal(&shown).chars().count();
            write!(
                f,
                "\n{line:>gutter$} | {}\n{:gutter$} | {:pad$}^",
                nodedoc_model::text::terminal(text),
                "",
                ""
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
