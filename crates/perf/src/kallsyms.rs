//! Kernel addresses to function names, from `/proc/kallsyms`.
//!
//! The table is read once and kept compact (one string arena, one sorted address array:
//! about 3 MB for the 120,000 text symbols of a distribution kernel), so every address of a
//! profile is a binary search. Only root (or CAP_SYSLOG with `kptr_restrict` < 2) sees the real
//! addresses; everyone else reads zeros, which [`Kallsyms::parse`] refuses with a reason.

use std::time::Instant;

/// Why the symbol table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KallsymsError {
    /// `/proc/kallsyms` could not be read.
    #[error("cannot read /proc/kallsyms: {0}")]
    Read(#[source] std::io::Error),
    /// Every address reads as zero.
    #[error(
        "/proc/kallsyms shows every address as 0 (kernel.kptr_restrict, or not root): kernel frames cannot be named"
    )]
    Hidden,
    /// No text symbol was found.
    #[error("/proc/kallsyms lists no text symbol")]
    Empty,
}

/// A kernel symbol an address resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// The function.
    pub name: &'a str,
    /// The module, for module code.
    pub module: Option<&'a str>,
    /// The address's offset into the function.
    pub offset: u64,
}

/// The kernel's text symbols, sorted by address.
#[derive(Debug)]
pub struct Kallsyms {
    /// Start addresses, ascending.
    addresses: Vec<u64>,
    /// For each address: the name's start in `arena`, its length, and the module's (0 for
    /// none), same index as `addresses`.
    names: Vec<(u32, u16, u16)>,
    arena: String,
    loaded_at: Instant,
}

impl Kallsyms {
    /// Reads `/proc/kallsyms`.
    pub fn load() -> Result<Kallsyms, KallsymsError> {
        let text = std::fs::read_to_string("/proc/kallsyms").map_err(KallsymsError::Read)?;
        Kallsyms::parse(&text)
    }

    /// Parses the text of `/proc/kallsyms` (`ADDRESS TYPE NAME [MODULE]` lines). Only text
    /// symbols (`t`, `T`, `w`, `W`) are kept: call chains hold return addresses into code.
    pub fn parse(text: &str) -> Result<Kallsyms, KallsymsError> {
        let mut entries: Vec<(u64, &str, Option<&str>)> = Vec::new();
        let mut nonzero = false;
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(address), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let Ok(address) = u64::from_str_radix(address, 16) else {
                continue;
            };
            nonzero |= address != 0;
            let module = fields
                .next()
                .and_then(|m| m.strip_prefix('['))
                .and_then(|m| m.strip_suffix(']'));
            entries.push((address, name, module));
        }
        if entries.is_empty() {
            return Err(KallsymsError::Empty);
        }
        if !nonzero {
            return Err(KallsymsError::Hidden);
        }
        entries.sort_by_key(|e| e.0);
        let mut arena = String::with_capacity(entries.iter().map(|e| e.1.len() + 1).sum());
        let mut addresses = Vec::with_capacity(entries.len());
        let mut names = Vec::with_capacity(entries.len());
        for (address, name, module) in entries {
            let start = arena.len() as u32;
            let name_len = name.len().min(u16::MAX as usize);
            arena.push_str(&name[..name_len]);
            let module_len = module.map_or(0, |m| m.len().min(u16::MAX as usize));
            if let Some(module) = module {
                arena.push_str(&module[..module_len]);
            }
            addresses.push(address);
            names.push((start, name_len as u16, module_len as u16));
        }
        arena.shrink_to_fit();
        Ok(Kallsyms {
            addresses,
            names,
            arena,
            loaded_at: Instant::now(),
        })
    }

    /// The function holding `address`: the symbol with the greatest start at or below it.
    /// `None` below the first symbol.
    pub fn resolve(&self, address: u64) -> Option<Symbol<'_>> {
        let index = match self.addresses.binary_search(&address) {
            Ok(i) => i,
            Err(0) => return None,
            Err(i) => i - 1,
        };
        let (start, name_len, module_len) = self.names[index];
        let start = start as usize;
        let name_end = start + name_len as usize;
        let module =
            (module_len > 0).then(|| &self.arena[name_end..name_end + module_len as usize]);
        Some(Symbol {
            name: &self.arena[start..name_end],
            module,
            offset: address - self.addresses[index],
        })
    }

    /// How many symbols are kept.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// True when no symbol is kept (never, for a table that parsed).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Bytes the table holds.
    pub fn memory_bytes(&self) -> usize {
        self.addresses.capacity() * 8 + self.names.capacity() * 8 + self.arena.capacity()
    }

    /// When it was read: modules loaded since are missing from it.
    pub fn loaded_at(&self) -> Instant {
        self.loaded_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff81e7c8f0 t rtnl_dump_all
ffffffff81efeea0 t netlink_dump
ffffffff82053150 t in_dev_dump_addr
ffffffff82054130 t inet_dump_addr
ffffffff83000000 D some_data
ffffffffc0a01000 t ovs_flow_cmd_dump\t[openvswitch]
";

    #[test]
    fn addresses_resolve_to_the_function_that_holds_them() {
        let table = Kallsyms::parse(TEXT).unwrap();
        assert_eq!(table.len(), 6, "the data symbol is left out");
        let symbol = table.resolve(0xffffffff81efeea0 + 0x1a3).unwrap();
        assert_eq!(symbol.name, "netlink_dump");
        assert_eq!(symbol.offset, 0x1a3);
        assert_eq!(symbol.module, None);
        assert_eq!(
            table.resolve(0xffffffff82053150).unwrap().name,
            "in_dev_dump_addr"
        );
        assert_eq!(
            table.resolve(0xffffffff82054129).unwrap().name,
            "in_dev_dump_addr",
            "one byte before the next symbol"
        );
        let module = table.resolve(0xffffffffc0a01010).unwrap();
        assert_eq!(
            (module.name, module.module),
            ("ovs_flow_cmd_dump", Some("openvswitch"))
        );
        assert_eq!(table.resolve(0x1000), None, "below the kernel");
    }

    #[test]
    fn hidden_addresses_are_refused_with_the_reason() {
        let hidden = TEXT
            .lines()
            .map(|l| format!("0000000000000000{}", &l[16..]))
            .collect::<Vec<_>>()
            .join("\n");
        let err = Kallsyms::parse(&hidden).unwrap_err();
        assert!(err.to_string().contains("kptr_restrict"), "{err}");
        assert!(matches!(
            Kallsyms::parse("garbage\n"),
            Err(KallsymsError::Empty)
        ));
    }
}
