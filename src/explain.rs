//! `nodedoc explain`.

use std::io::Write;

use anstyle::Style;
use anyhow::{bail, Result};
use nodedoc_model::text::Escaped;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// Lists the detectors, or explains one.
pub fn explain(id: Option<&str>) -> Result<u8> {
    let catalog = nodedoc_detectors::catalog();
    let mut out = anstream::stdout().lock();
    let Some(id) = id else {
        writeln!(
            out,
            "{BOLD}Detectors{BOLD:#} (`nodedoc explain ID` for details):"
        )?;
        for detector in nodedoc_detectors::detectors() {
            let title = catalog
                .detector(detector.id())
                .map_or("", |entry| entry.title.as_str());
            writeln!(out, "  {:<28} {}", detector.id(), Escaped(title))?;
        }
        return Ok(crate::exit::OK);
    };
    let Some(entry) = catalog.detector(id) else {
        let known: Vec<&str> = nodedoc_detectors::detectors()
            .iter()
            .map(|d| d.id())
            .collect();
        bail!("no detector {id:?}; known detectors: {}", known.join(", "));
    };
    // The catalog is nodedoc's own text, but it is shown the way every text is.
    writeln!(
        out,
        "{BOLD}{}{BOLD:#} — {}",
        Escaped(&entry.id),
        Escaped(&entry.title)
    )?;
    for (label, text) in [("What it detects", &entry.detects), ("How", &entry.how)] {
        writeln!(out, "\n{BOLD}{label}{BOLD:#}")?;
        for paragraph in text.trim().split("\n\n") {
            writeln!(
                out,
                "  {}",
                Escaped(&paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
            )?;
        }
    }
    writeln!(
        out,
        "\n{BOLD}Usual fix{BOLD:#} (placeholders are filled in real findings)"
    )?;
    writeln!(
        out,
        "  {}",
        Escaped(&entry.fix.split_whitespace().collect::<Vec<_>>().join(" "))
    )?;
    if !entry.references.is_empty() {
        writeln!(out, "\n{BOLD}References{BOLD:#}")?;
        for reference in &entry.references {
            writeln!(
                out,
                "  • {} {DIM}{}{DIM:#}",
                Escaped(&reference.title),
                Escaped(&reference.url)
            )?;
        }
    }
    Ok(crate::exit::OK)
}
