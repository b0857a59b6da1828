//! OVSDB values (RFC 7047 section 5.1): atoms, sets, maps and rows, and their JSON forms.
//!
//! The wire format is ambiguous without the schema: a set with exactly one element may be
//! sent as the bare atom, and a column whose type is "at most one integer" (such as
//! `Interface.ofport`) looks like a plain integer when set and like `["set",[]]` when not.
//! [`Datum`] therefore keeps what was on the wire, and its accessors ([`Datum::atoms`],
//! [`Datum::as_optional`]) read it the way the column's type says it should be read.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::{abbreviate_json, DataError};

/// An OVSDB UUID: 128 bits, written `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(u128);

impl Uuid {
    /// The all-zero UUID, which OVSDB uses as the default value of a `uuid` column.
    pub const NIL: Uuid = Uuid(0);

    /// Builds a UUID from its 128-bit value.
    pub const fn from_u128(value: u128) -> Self {
        Uuid(value)
    }

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl FromStr for Uuid {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        let bytes = s.as_bytes();
        let invalid = || DataError::InvalidUuid(s.chars().take(64).collect());
        if bytes.len() != 36 {
            return Err(invalid());
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return Err(invalid());
                }
                continue;
            }
            let digit = (b as char).to_digit(16).ok_or_else(invalid)?;
            value = (value << 4) | u128::from(digit);
        }
        Ok(Uuid(value))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One OVSDB scalar (RFC 7047 `<atom>`).
#[derive(Debug, Clone)]
pub enum Atom {
    /// A 64-bit signed integer.
    Integer(i64),
    /// A floating-point number. JSON cannot carry NaN or infinities; they encode as `null`,
    /// which the server rejects.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string.
    String(String),
    /// A reference to a row, `["uuid", "…"]`.
    Uuid(Uuid),
    /// A reference to a row inserted earlier in the same transaction, `["named-uuid", "…"]`.
    NamedUuid(String),
}

// Reals compare by bit pattern so atoms can live in hash sets (set diffs in update2 need
// that); OVSDB never stores NaN, so the difference from IEEE equality does not show.
impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a == b,
            (Atom::Real(a), Atom::Real(b)) => a.to_bits() == b.to_bits(),
            (Atom::Boolean(a), Atom::Boolean(b)) => a == b,
            (Atom::String(a), Atom::String(b)) => a == b,
            (Atom::Uuid(a), Atom::Uuid(b)) => a == b,
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Atom {}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Atom::Integer(v) => v.hash(state),
            Atom::Real(v) => v.to_bits().hash(state),
            Atom::Boolean(v) => v.hash(state),
            Atom::String(v) => v.hash(state),
            Atom::Uuid(v) => v.hash(state),
            Atom::NamedUuid(v) => v.hash(state),
        }
    }
}

impl Atom {
    /// Parses an RFC 7047 `<atom>`.
    pub fn from_json(json: &Value) -> Result<Atom, DataError> {
        let invalid = |reason| DataError::InvalidAtom {
            json: abbreviate_json(json),
            reason,
        };
        match json {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if n.is_u64() {
                    Err(invalid("integer does not fit in 64 signed bits"))
                } else {
                    n.as_f64()
                        .map(Atom::Real)
                        .ok_or_else(|| invalid("not a finite number"))
                }
            }
            Value::Array(items) => match items.as_slice() {
                [Value::String(tag), Value::String(text)] if tag == "uuid" => {
                    Ok(Atom::Uuid(text.parse()?))
                }
                [Value::String(tag), Value::String(text)] if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(text.clone()))
                }
                _ => Err(invalid(
                    "arrays are only atoms as [\"uuid\",…] or [\"named-uuid\",…]",
                )),
            },
            Value::Null => Err(invalid("null is not an atom")),
            Value::Object(_) => Err(invalid("an object is not an atom")),
        }
    }

    /// The RFC 7047 JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(v) => json!(v),
            Atom::Real(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
            Atom::Boolean(v) => json!(v),
            Atom::String(v) => json!(v),
            Atom::Uuid(v) => json!(["uuid", v.to_string()]),
            Atom::NamedUuid(v) => json!(["named-uuid", v]),
        }
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(v) => Some(*v),
            _ => None,
        }
    }

    /// The number, for real and integer atoms: OVS writes whole reals without a fraction
    /// (`1` rather than `1.0`), so a real column can arrive looking like an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atom::Real(v) => Some(*v),
            Atom::Integer(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean atom.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(v) => Some(*v),
            _ => None,
        }
    }

    /// The UUID, if this is a `["uuid", …]` atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(v) => Some(*v),
            _ => None,
        }
    }

    /// A short name of the atom's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Atom::Integer(_) => "integer",
            Atom::Real(_) => "real",
            Atom::Boolean(_) => "boolean",
            Atom::String(_) => "string",
            Atom::Uuid(_) => "uuid",
            Atom::NamedUuid(_) => "named-uuid",
        }
    }
}

impl From<&str> for Atom {
    fn from(v: &str) -> Self {
        Atom::String(v.to_owned())
    }
}
impl From<String> for Atom {
    fn from(v: String) -> Self {
        Atom::String(v)
    }
}
impl From<i64> for Atom {
    fn from(v: i64) -> Self {
        Atom::Integer(v)
    }
}
impl From<f64> for Atom {
    fn from(v: f64) -> Self {
        Atom::Real(v)
    }
}
impl From<bool> for Atom {
    fn from(v: bool) -> Self {
        Atom::Boolean(v)
    }
}
impl From<Uuid> for Atom {
    fn from(v: Uuid) -> Self {
        Atom::Uuid(v)
    }
}

/// The value of one column (RFC 7047 `<value>`): an atom, a set or a map.
///
/// Decoding keeps the wire form: a bare atom stays [`Datum::Atom`] even when the column is a
/// set, because the JSON alone cannot tell "scalar" from "set of one". Use [`Datum::atoms`]
/// to read any non-map column as a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// A bare atom: a scalar column, or a set column holding exactly one element.
    Atom(Atom),
    /// `["set", [atom, …]]`; `["set", []]` is the empty set, OVSDB's "no value".
    Set(Vec<Atom>),
    /// `["map", [[key, value], …]]`.
    Map(Vec<(Atom, Atom)>),
}

impl Datum {
    /// The empty set, which is how OVSDB spells "unset" for optional columns.
    pub fn empty_set() -> Datum {
        Datum::Set(Vec::new())
    }

    /// A set of the given atoms.
    pub fn set<I, A>(items: I) -> Datum
    where
        I: IntoIterator<Item = A>,
        A: Into<Atom>,
    {
        Datum::Set(items.into_iter().map(Into::into).collect())
    }

    /// A map of the given key/value pairs.
    pub fn map<I, K, V>(pairs: I) -> Datum
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Atom>,
        V: Into<Atom>,
    {
        Datum::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A reference to a row inserted earlier in the same transaction under `uuid-name`.
    pub fn named_uuid(name: impl Into<String>) -> Datum {
        Datum::Atom(Atom::NamedUuid(name.into()))
    }

    /// Parses an RFC 7047 `<value>`.
    pub fn from_json(json: &Value) -> Result<Datum, DataError> {
        let invalid = |reason| DataError::InvalidDatum {
            json: abbreviate_json(json),
            reason,
        };
        if let Value::Array(items) = json {
            match items.as_slice() {
                [Value::String(tag), Value::Array(elements)] if tag == "set" => {
                    return elements
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<Vec<_>, _>>()
                        .map(Datum::Set);
                }
                [Value::String(tag), Value::Array(pairs)] if tag == "map" => {
                    let mut out = Vec::with_capacity(pairs.len());
                    for pair in pairs {
                        match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => out.push((Atom::from_json(k)?, Atom::from_json(v)?)),
                            _ => return Err(invalid("map entries must be [key, value] pairs")),
                        }
                    }
                    return Ok(Datum::Map(out));
                }
                [Value::String(tag), _] if tag == "set" || tag == "map" => {
                    return Err(invalid("the elements of a set or map must be an array"));
                }
                _ => {}
            }
        }
        Atom::from_json(json).map(Datum::Atom)
    }

    /// The RFC 7047 JSON form (sets always in the `["set", […]]` form, which ovsdb-server
    /// accepts for scalar columns too).
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Atom(a) => a.to_json(),
            Datum::Set(items) => {
                json!(["set", items.iter().map(Atom::to_json).collect::<Vec<_>>()])
            }
            Datum::Map(pairs) => json!([
                "map",
                pairs
                    .iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The elements of a scalar or set column (a bare atom is a set of one). `None` for a map.
    pub fn atoms(&self) -> Option<&[Atom]> {
        match self {
            Datum::Atom(a) => Some(std::slice::from_ref(a)),
            Datum::Set(items) => Some(items),
            Datum::Map(_) => None,
        }
    }

    /// Reads an "optional" column (type with `min` 0 and `max` 1): `Ok(None)` for the empty
    /// set, `Ok(Some(atom))` for one element, `Err(())` for maps and larger sets.
    #[allow(clippy::result_unit_err)]
    pub fn as_optional(&self) -> Result<Option<&Atom>, ()> {
        match self.atoms() {
            Some([]) => Ok(None),
            Some([one]) => Ok(Some(one)),
            _ => Err(()),
        }
    }

    /// The pairs of a map column. An empty set is accepted as an empty map, since some
    /// writers use `["set",[]]` for "nothing".
    pub fn pairs(&self) -> Option<&[(Atom, Atom)]> {
        match self {
            Datum::Map(pairs) => Some(pairs),
            Datum::Set(items) if items.is_empty() => Some(&[]),
            _ => None,
        }
    }

    /// True for the empty set and the empty map.
    pub fn is_empty(&self) -> bool {
        match self {
            Datum::Atom(_) => false,
            Datum::Set(items) => items.is_empty(),
            Datum::Map(pairs) => pairs.is_empty(),
        }
    }

    /// A short description of the value's shape, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Datum::Atom(a) => a.type_name().to_owned(),
            Datum::Set(items) => format!("set of {}", items.len()),
            Datum::Map(pairs) => format!("map of {}", pairs.len()),
        }
    }
}

impl<T: Into<Atom>> From<T> for Datum {
    fn from(v: T) -> Self {
        Datum::Atom(v.into())
    }
}

impl Serialize for Datum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(deserializer)?;
        Datum::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// A row: column name to value (RFC 7047 `<row>`). Rows read from the server may include the
/// implicit `_uuid` and `_version` columns; rows in update2 notifications leave out columns
/// that hold their default value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row {
    columns: BTreeMap<String, Datum>,
}

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Row::default()
    }

    /// Parses an RFC 7047 `<row>` object.
    pub fn from_json(json: &Value) -> Result<Row, DataError> {
        let Value::Object(map) = json else {
            return Err(DataError::malformed(
                "row",
                format!("expected a JSON object, found {}", abbreviate_json(json)),
            ));
        };
        let mut columns = BTreeMap::new();
        for (name, value) in map {
            columns.insert(name.clone(), Datum::from_json(value)?);
        }
        Ok(Row { columns })
    }

    /// The RFC 7047 JSON form.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.columns
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Sets a column, builder style.
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.insert(column, value);
        self
    }

    /// Sets a column.
    pub fn insert(&mut self, column: impl Into<String>, value: impl Into<Datum>) {
        self.columns.insert(column.into(), value.into());
    }

    /// Removes a column, returning its value.
    pub fn remove(&mut self, column: &str) -> Option<Datum> {
        self.columns.remove(column)
    }

    /// The value of a column, if present.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.columns.get(column)
    }

    /// Mutable access to a column's value.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Datum> {
        self.columns.get_mut(column)
    }

    /// All columns, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Datum)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of columns present.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when no column is present.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The implicit `_uuid` column, when the server included it.
    pub fn uuid(&self) -> Option<Uuid> {
        self.get("_uuid").and_then(|d| match d {
            Datum::Atom(Atom::Uuid(u)) => Some(*u),
            _ => None,
        })
    }

    /// The implicit `_version` column, when the server included it.
    pub fn version(&self) -> Option<Uuid> {
        self.get("_version").and_then(|d| match d {
            Datum::Atom(Atom::Uuid(u)) => Some(*u),
            _ => None,
        })
    }

    /// Typed read access that reports mistakes with the table and row they came from.
    pub fn reader<'a>(&'a self, table: &'a str) -> RowReader<'a> {
        RowReader { row: self, table }
    }
}

impl FromIterator<(String, Datum)> for Row {
    fn from_iter<T: IntoIterator<Item = (String, Datum)>>(iter: T) -> Self {
        Row {
            columns: iter.into_iter().collect(),
        }
    }
}

/// Reads columns of a [`Row`] as Rust types. A missing column reads as the column type's
/// default (empty string, 0, false, empty set or map), which is what update2 rows mean when
/// they leave a column out; a column of the wrong type is a [`DataError::WrongType`].
#[derive(Debug, Clone, Copy)]
pub struct RowReader<'a> {
    row: &'a Row,
    table: &'a str,
}

impl<'a> RowReader<'a> {
    fn wrong(&self, column: &str, expected: &'static str, found: &Datum) -> DataError {
        DataError::WrongType {
            table: self.table.to_owned(),
            row: self
                .row
                .uuid()
                .map_or_else(|| "?".to_owned(), |u| u.to_string()),
            column: column.to_owned(),
            expected,
            found: found.describe(),
        }
    }

    /// A string scalar; missing reads as `""`.
    pub fn string(&self, column: &str) -> Result<String, DataError> {
        match self.row.get(column) {
            None => Ok(String::new()),
            Some(d) => match d.as_optional() {
                Ok(Some(Atom::String(s))) => Ok(s.clone()),
                _ => Err(self.wrong(column, "string", d)),
            },
        }
    }

    /// An optional string (at most one element); missing or empty reads as `None`.
    pub fn optional_string(&self, column: &str) -> Result<Option<String>, DataError> {
        match self.row.get(column) {
            None => Ok(None),
            Some(d) => match d.as_optional() {
                Ok(None) => Ok(None),
                Ok(Some(Atom::String(s))) => Ok(Some(s.clone())),
                _ => Err(self.wrong(column, "optional string", d)),
            },
        }
    }

    /// An integer scalar; missing reads as 0.
    pub fn integer(&self, column: &str) -> Result<i64, DataError> {
        match self.row.get(column) {
            None => Ok(0),
            Some(d) => match d.as_optional() {
                Ok(Some(Atom::Integer(v))) => Ok(*v),
                _ => Err(self.wrong(column, "integer", d)),
            },
        }
    }

    /// An optional integer (at most one element); missing or empty reads as `None`.
    pub fn optional_integer(&self, column: &str) -> Result<Option<i64>, DataError> {
        match self.row.get(column) {
            None => Ok(None),
            Some(d) => match d.as_optional() {
                Ok(None) => Ok(None),
                Ok(Some(Atom::Integer(v))) => Ok(Some(*v)),
                _ => Err(self.wrong(column, "optional integer", d)),
            },
        }
    }

    /// An optional boolean; missing or empty reads as `None`.
    pub fn optional_boolean(&self, column: &str) -> Result<Option<bool>, DataError> {
        match self.row.get(column) {
            None => Ok(None),
            Some(d) => match d.as_optional() {
                Ok(None) => Ok(None),
                Ok(Some(Atom::Boolean(v))) => Ok(Some(*v)),
                _ => Err(self.wrong(column, "optional boolean", d)),
            },
        }
    }

    /// A set of strings; missing reads as empty.
    pub fn string_set(&self, column: &str) -> Result<Vec<String>, DataError> {
        match self.row.get(column) {
            None => Ok(Vec::new()),
            Some(d) => d
                .atoms()
                .and_then(|atoms| {
                    atoms
                        .iter()
                        .map(|a| a.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| self.wrong(column, "set of strings", d)),
        }
    }

    /// A set of row references; missing reads as empty.
    pub fn uuid_set(&self, column: &str) -> Result<Vec<Uuid>, DataError> {
        match self.row.get(column) {
            None => Ok(Vec::new()),
            Some(d) => d
                .atoms()
                .and_then(|atoms| atoms.iter().map(Atom::as_uuid).collect::<Option<Vec<_>>>())
                .ok_or_else(|| self.wrong(column, "set of uuids", d)),
        }
    }

    /// A string-to-string map; missing reads as empty.
    pub fn string_map(&self, column: &str) -> Result<BTreeMap<String, String>, DataError> {
        match self.row.get(column) {
            None => Ok(BTreeMap::new()),
            Some(d) => d
                .pairs()
                .and_then(|pairs| {
                    pairs
                        .iter()
                        .map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                        .collect::<Option<BTreeMap<_, _>>>()
                })
                .ok_or_else(|| self.wrong(column, "map of string to string", d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips_and_rejects_garbage() {
        let text = "3410a295-c0b5-42b9-b8cf-fc7944be60df";
        let uuid: Uuid = text.parse().unwrap();
        assert_eq!(uuid.to_string(), text);
        assert_eq!(
            "3410A295-C0B5-42B9-B8CF-FC7944BE60DF"
                .parse::<Uuid>()
                .unwrap(),
            uuid
        );
        for bad in [
            "",
            "3410a295c0b542b9b8cffc7944be60df",
            "3410a295-c0b5-42b9-b8cf-fc7944be60dg",
            "3410a295-c0b5-42b9-b8cf_fc7944be60df",
            "3410a295-c0b5-42b9-b8cf-fc7944be60df0",
            "é410a295-c0b5-42b9-b8cf-fc7944be60d",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn atoms_decode_from_every_json_form() {
        assert_eq!(Atom::from_json(&json!(5)).unwrap(), Atom::Integer(5));
        assert_eq!(Atom::from_json(&json!(-1)).unwrap(), Atom::Integer(-1));
        assert_eq!(Atom::from_json(&json!(1.5)).unwrap(), Atom::Real(1.5));
        assert_eq!(Atom::from_json(&json!(true)).unwrap(), Atom::Boolean(true));
        assert_eq!(Atom::from_json(&json!("x")).unwrap(), Atom::from("x"));
        assert_eq!(
            Atom::from_json(&json!(["named-uuid", "row1"])).unwrap(),
            Atom::NamedUuid("row1".into())
        );
        assert!(matches!(
            Atom::from_json(&json!(["uuid", "3410a295-c0b5-42b9-b8cf-fc7944be60df"])).unwrap(),
            Atom::Uuid(_)
        ));
        for bad in [
            json!(null),
            json!({}),
            json!(["uuid", "nope"]),
            json!(["uuid"]),
            json!(["set", []]),
            json!(u64::MAX),
        ] {
            assert!(Atom::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datums_keep_the_wire_form_and_read_as_sets() {
        let empty = Datum::from_json(&json!(["set", []])).unwrap();
        assert_eq!(empty, Datum::empty_set());
        assert_eq!(empty.as_optional(), Ok(None));
        assert_eq!(empty.pairs(), Some(&[][..]));

        // The single-element-set shorthand: a bare atom is a set of one.
        let one =
            Datum::from_json(&json!(["uuid", "3410a295-c0b5-42b9-b8cf-fc7944be60df"])).unwrap();
        assert_eq!(one.atoms().unwrap().len(), 1);

        let two = Datum::from_json(&json!(["set", [1, 2]])).unwrap();
        assert_eq!(two.atoms().unwrap(), &[Atom::Integer(1), Atom::Integer(2)]);
        assert!(two.as_optional().is_err());

        let map = Datum::from_json(&json!(["map", [["iface-id", "abc"], ["n", 1]]])).unwrap();
        assert_eq!(
            map,
            Datum::Map(vec![
                (Atom::from("iface-id"), Atom::from("abc")),
                (Atom::from("n"), Atom::Integer(1))
            ])
        );
        assert_eq!(
            map.to_json(),
            json!(["map", [["iface-id", "abc"], ["n", 1]]])
        );
        assert_eq!(Datum::from_json(&map.to_json()).unwrap(), map);

        for bad in [
            json!(["set", 1]),
            json!(["map", [["k"]]]),
            json!(["map", [1]]),
            json!(["set", [null]]),
            json!(["map", {}]),
        ] {
            assert!(Datum::from_json(&bad).is_err(), "{bad}");
        }
        // A two-string array that is not a tagged form is not a datum either.
        assert!(Datum::from_json(&json!(["a", "b"])).is_err());
    }

    #[test]
    fn row_reader_defaults_missing_columns_and_reports_wrong_types() {
        let row = Row::from_json(&json!({
            "_uuid": ["uuid", "3410a295-c0b5-42b9-b8cf-fc7944be60df"],
            "name": "p1",
            "ofport": ["set", []],
            "ifindex": 7,
            "external_ids": ["map", [["iface-id", "abc"]]],
            "ports": ["set", [["uuid", "f0d8dedb-9be2-4cc1-bcd2-d08e7a086284"]]],
        }))
        .unwrap();
        let r = row.reader("Interface");
        assert_eq!(r.string("name").unwrap(), "p1");
        assert_eq!(r.string("missing").unwrap(), "");
        assert_eq!(r.optional_integer("ofport").unwrap(), None);
        assert_eq!(r.optional_integer("ifindex").unwrap(), Some(7));
        assert_eq!(r.string_map("external_ids").unwrap()["iface-id"], "abc");
        assert_eq!(r.uuid_set("ports").unwrap().len(), 1);
        let err = r.integer("name").unwrap_err();
        assert!(
            err.to_string()
                .contains("Interface row 3410a295-c0b5-42b9-b8cf-fc7944be60df column name"),
            "{err}"
        );
    }
}
