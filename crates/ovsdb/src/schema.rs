//! Database schemas (RFC 7047 section 3.2), as returned by `get_schema`.
//!
//! The client needs column types for one thing the wire format cannot express on its own:
//! applying update2 `modify` diffs, whose meaning depends on whether a column is a scalar,
//! a set or a map (see [`crate::TableReplica`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::data::{Atom, Datum, Uuid};
use crate::error::{abbreviate_json, DataError};

/// The type of an atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicType {
    /// `integer`
    Integer,
    /// `real`
    Real,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `uuid`
    Uuid,
}

impl AtomicType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }

    /// The value OVSDB gives a scalar column of this type when nothing else is set.
    pub fn default_atom(self) -> Atom {
        match self {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(String::new()),
            AtomicType::Uuid => Atom::Uuid(Uuid::NIL),
        }
    }
}

/// Whether a reference keeps its target alive (`strong`) or is dropped when the target row
/// is deleted (`weak`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    /// The default: the referenced row cannot be deleted while referenced.
    Strong,
    /// The reference disappears when the referenced row is deleted.
    Weak,
}

/// A key or value type (RFC 7047 `<base-type>`), with the constraints clients commonly
/// need. The full JSON is kept in [`ColumnSchema::raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atom type.
    pub atomic: AtomicType,
    /// The allowed values, when the type is an enumeration.
    pub enum_values: Option<Vec<Atom>>,
    /// For `uuid`s: the table referenced.
    pub ref_table: Option<String>,
    /// For `uuid`s with a `ref_table`: strong or weak.
    pub ref_type: Option<RefType>,
}

impl BaseType {
    fn from_json(json: &Value, what: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::malformed(what.to_owned(), reason);
        match json {
            Value::String(name) => Ok(BaseType {
                atomic: AtomicType::parse(name)
                    .ok_or_else(|| bad(format!("unknown atomic type {name:?}")))?,
                enum_values: None,
                ref_table: None,
                ref_type: None,
            }),
            Value::Object(map) => {
                let name = map
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("base type object has no \"type\" string".into()))?;
                let atomic = AtomicType::parse(name)
                    .ok_or_else(|| bad(format!("unknown atomic type {name:?}")))?;
                let enum_values = match map.get("enum") {
                    None => None,
                    Some(e) => match Datum::from_json(e)? {
                        Datum::Atom(a) => Some(vec![a]),
                        Datum::Set(items) => Some(items),
                        Datum::Map(_) => return Err(bad("\"enum\" must be a set".into())),
                    },
                };
                let ref_table = map
                    .get("refTable")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let ref_type = match map.get("refType").and_then(Value::as_str) {
                    Some("weak") => Some(RefType::Weak),
                    Some("strong") => Some(RefType::Strong),
                    Some(other) => return Err(bad(format!("unknown refType {other:?}"))),
                    None if ref_table.is_some() => Some(RefType::Strong),
                    None => None,
                };
                Ok(BaseType {
                    atomic,
                    enum_values,
                    ref_table,
                    ref_type,
                })
            }
            other => Err(bad(format!(
                "expected a type name or object, found {}",
                abbreviate_json(other)
            ))),
        }
    }
}

/// A column's type (RFC 7047 `<type>`): a key type, an optional value type (maps) and how
/// many elements the column holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// The key (or only) type.
    pub key: BaseType,
    /// The value type, for maps.
    pub value: Option<BaseType>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements; `None` means `"unlimited"`.
    pub max: Option<u64>,
}

impl ColumnType {
    fn from_json(json: &Value, what: &str) -> Result<Self, DataError> {
        match json {
            Value::String(_) => Ok(ColumnType {
                key: BaseType::from_json(json, what)?,
                value: None,
                min: 1,
                max: Some(1),
            }),
            Value::Object(map) => {
                let bad = |reason: String| DataError::malformed(what.to_owned(), reason);
                let key = BaseType::from_json(
                    map.get("key")
                        .ok_or_else(|| bad("type object has no \"key\"".into()))?,
                    what,
                )?;
                let value = map
                    .get("value")
                    .map(|v| BaseType::from_json(v, what))
                    .transpose()?;
                let min = match map.get("min") {
                    None => 1,
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| bad("\"min\" must be 0 or 1".into()))?,
                };
                let max =
                    match map.get("max") {
                        None => Some(1),
                        Some(Value::String(s)) if s == "unlimited" => None,
                        Some(v) => Some(v.as_u64().ok_or_else(|| {
                            bad("\"max\" must be a number or \"unlimited\"".into())
                        })?),
                    };
                Ok(ColumnType {
                    key,
                    value,
                    min,
                    max,
                })
            }
            other => Err(DataError::malformed(
                what.to_owned(),
                format!("expected a type, found {}", abbreviate_json(other)),
            )),
        }
    }

    /// True for maps (the type has a value type).
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// True for exactly-one-element columns such as `Interface.name`.
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }

    /// True for zero-or-one-element columns such as `Interface.ofport`.
    pub fn is_optional_scalar(&self) -> bool {
        self.value.is_none() && self.min == 0 && self.max == Some(1)
    }

    /// True for sets that can hold more than one element, such as `Bridge.ports`.
    pub fn is_multi_set(&self) -> bool {
        self.value.is_none() && self.max != Some(1)
    }

    /// The column's value when it was never set: the key type's default atom for scalars,
    /// otherwise the empty set or map.
    pub fn default_datum(&self) -> Datum {
        if self.is_map() {
            Datum::Map(Vec::new())
        } else if self.min >= 1 {
            Datum::Atom(self.key.atomic.default_atom())
        } else {
            Datum::empty_set()
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// The column's type.
    pub column_type: ColumnType,
    /// Ephemeral columns are not persisted on disk (e.g. `Interface.ofport`).
    pub ephemeral: bool,
    /// Whether the column may be changed after insertion.
    pub mutable: bool,
    /// The column's schema JSON as received.
    pub raw: Value,
}

/// One table of a database.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The columns, by name (without the implicit `_uuid` and `_version`).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// Root tables keep their rows; rows of non-root tables that nothing references are
    /// garbage-collected at commit.
    pub is_root: bool,
    /// Maximum number of rows, if limited.
    pub max_rows: Option<u64>,
    /// Sets of columns whose values must be unique across rows.
    pub indexes: Vec<Vec<String>>,
}

/// A database schema (RFC 7047 `<database-schema>`).
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// The database name, e.g. `Open_vSwitch`.
    pub name: String,
    /// The schema version, e.g. `8.3.0`.
    pub version: Option<String>,
    /// The checksum, when present.
    pub cksum: Option<String>,
    /// The tables, by name.
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parses a schema as returned by `get_schema` (or an `.ovsschema` file).
    pub fn from_json(json: &Value) -> Result<Self, DataError> {
        let bad = |what: &str, reason: &str| DataError::malformed(what.to_owned(), reason);
        let obj = json
            .as_object()
            .ok_or_else(|| bad("schema", "expected a JSON object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("schema", "missing \"name\""))?
            .to_owned();
        let tables_json = obj
            .get("tables")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("schema", "missing \"tables\" object"))?;
        let mut tables = BTreeMap::new();
        for (table_name, table_json) in tables_json {
            let what = format!("schema table {table_name}");
            let table_obj = table_json
                .as_object()
                .ok_or_else(|| bad(&what, "expected a JSON object"))?;
            let columns_json = table_obj
                .get("columns")
                .and_then(Value::as_object)
                .ok_or_else(|| bad(&what, "missing \"columns\" object"))?;
            let mut columns = BTreeMap::new();
            for (column_name, column_json) in columns_json {
                let what = format!("schema column {table_name}.{column_name}");
                let type_json = column_json
                    .get("type")
                    .ok_or_else(|| bad(&what, "missing \"type\""))?;
                columns.insert(
                    column_name.clone(),
                    ColumnSchema {
                        column_type: ColumnType::from_json(type_json, &what)?,
                        ephemeral: column_json
                            .get("ephemeral")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        mutable: column_json
                            .get("mutable")
                            .and_then(Value::as_bool)
                            .unwrap_or(true),
                        raw: column_json.clone(),
                    },
                );
            }
            let indexes = table_obj
                .get("indexes")
                .and_then(Value::as_array)
                .map(|sets| {
                    sets.iter()
                        .filter_map(Value::as_array)
                        .map(|cols| {
                            cols.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            tables.insert(
                table_name.clone(),
                TableSchema {
                    columns,
                    is_root: table_obj
                        .get("isRoot")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    max_rows: table_obj.get("maxRows").and_then(Value::as_u64),
                    indexes,
                },
            );
        }
        Ok(DatabaseSchema {
            name,
            version: obj
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_owned),
            cksum: obj.get("cksum").and_then(Value::as_str).map(str::to_owned),
            tables,
        })
    }

    /// The type of `table.column`, if both exist.
    pub fn column_type(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables
            .get(table)?
            .columns
            .get(column)
            .map(|c| &c.column_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_installed_vswitch_schema_when_present() {
        let Ok(text) = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema") else {
            return;
        };
        let json: Value = serde_json::from_str(&text).unwrap();
        let schema = DatabaseSchema::from_json(&json).unwrap();
        assert_eq!(schema.name, "Open_vSwitch");
        let ofport = schema.column_type("Interface", "ofport").unwrap();
        assert!(ofport.is_optional_scalar());
        assert_eq!(ofport.default_datum(), Datum::empty_set());
        let ports = schema.column_type("Bridge", "ports").unwrap();
        assert!(ports.is_multi_set());
        assert_eq!(ports.key.ref_table.as_deref(), Some("Port"));
        assert_eq!(ports.key.ref_type, Some(RefType::Strong));
        assert!(schema
            .column_type("Interface", "external_ids")
            .unwrap()
            .is_map());
        assert!(schema.column_type("Interface", "name").unwrap().is_scalar());
        let link_state = schema.column_type("Interface", "link_state").unwrap();
        assert_eq!(link_state.key.enum_values.as_ref().unwrap().len(), 2);
        assert!(schema.tables["Open_vSwitch"].is_root);
        assert!(!schema.tables["Bridge"].is_root);
        assert_eq!(
            schema.tables["Bridge"].indexes,
            vec![vec!["name".to_owned()]]
        );
    }

    #[test]
    fn rejects_malformed_schemas() {
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"name": "x"}),
            serde_json::json!({"name": "x", "tables": {"T": {}}}),
            serde_json::json!({"name": "x", "tables": {"T": {"columns": {"c": {}}}}}),
            serde_json::json!({"name": "x", "tables": {"T": {"columns": {"c": {"type": "blob"}}}}}),
            serde_json::json!({"name": "x", "tables": {"T": {"columns": {"c": {"type": {"key": "string", "max": -1}}}}}}),
        ] {
            assert!(DatabaseSchema::from_json(&bad).is_err(), "{bad}");
        }
    }
}
