//! `transact` operations (RFC 7047 section 5.2) and their results.
//!
//! Each operation has a small builder; all of them convert into [`Operation`], which also
//! has a [`Operation::Raw`] escape hatch for anything the builders do not cover.
//!
//! ```
//! use nodedoc_ovsdb::{Condition, Insert, Mutate, Mutation, Operation, Select, Datum};
//! let ops: Vec<Operation> = vec![
//!     Insert::new("Interface").value("name", "tap0").uuid_name("iface").into(),
//!     Select::new("Bridge").where_eq("name", "br-int").columns(["name", "ports"]).into(),
//!     Mutate::new("Bridge")
//!         .condition(Condition::eq("name", "br-int"))
//!         .mutation(Mutation::insert("ports", Datum::named_uuid("port")))
//!         .into(),
//! ];
//! assert_eq!(ops[1].to_json()["op"], "select");
//! ```

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::data::{Datum, Row, Uuid};
use crate::error::{abbreviate_json, DataError};

/// A comparison function of a `<condition>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `<`
    LessThan,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>=`
    GreaterOrEqual,
    /// `>`
    GreaterThan,
    /// `includes`: the column's set or map contains all of the value's elements.
    Includes,
    /// `excludes`: the column's set or map contains none of the value's elements.
    Excludes,
}

impl Function {
    /// The RFC 7047 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::LessThan => "<",
            Function::LessOrEqual => "<=",
            Function::Equal => "==",
            Function::NotEqual => "!=",
            Function::GreaterOrEqual => ">=",
            Function::GreaterThan => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// A `<condition>`: `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The column compared (may be `_uuid`).
    pub column: String,
    /// How it is compared.
    pub function: Function,
    /// What it is compared with.
    pub value: Datum,
}

impl Condition {
    /// A condition with any function.
    pub fn new(column: impl Into<String>, function: Function, value: impl Into<Datum>) -> Self {
        Condition {
            column: column.into(),
            function,
            value: value.into(),
        }
    }

    /// `column == value`.
    pub fn eq(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Condition::new(column, Function::Equal, value)
    }

    /// `column != value`.
    pub fn ne(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Condition::new(column, Function::NotEqual, value)
    }

    /// `column includes value`.
    pub fn includes(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Condition::new(column, Function::Includes, value)
    }

    /// `_uuid == uuid`: the row with this UUID.
    pub fn uuid(uuid: Uuid) -> Self {
        Condition::eq("_uuid", uuid)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

fn conditions_json(conditions: &[Condition]) -> Value {
    Value::Array(conditions.iter().map(Condition::to_json).collect())
}

/// A mutator of a `<mutation>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    /// `+=`
    Add,
    /// `-=`
    Subtract,
    /// `*=`
    Multiply,
    /// `/=`
    Divide,
    /// `%=`
    Modulo,
    /// `insert`: add elements to a set or map.
    Insert,
    /// `delete`: remove elements from a set, or keys (or key/value pairs) from a map.
    Delete,
}

impl Mutator {
    /// The RFC 7047 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Subtract => "-=",
            Mutator::Multiply => "*=",
            Mutator::Divide => "/=",
            Mutator::Modulo => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// A `<mutation>`: `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The column changed.
    pub column: String,
    /// How.
    pub mutator: Mutator,
    /// The operand.
    pub value: Datum,
}

impl Mutation {
    /// A mutation with any mutator.
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Datum>) -> Self {
        Mutation {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }

    /// Adds elements to a set or entries to a map.
    pub fn insert(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Mutation::new(column, Mutator::Insert, value)
    }

    /// Removes elements from a set or keys from a map.
    pub fn delete(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Mutation::new(column, Mutator::Delete, value)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// `insert`: add a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// The table.
    pub table: String,
    /// The new row's columns; unspecified columns get their defaults.
    pub row: Row,
    /// A name by which later operations of the same transaction can refer to the row.
    pub uuid_name: Option<String>,
}

impl Insert {
    /// Inserts an (initially empty) row into `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Insert {
            table: table.into(),
            row: Row::new(),
            uuid_name: None,
        }
    }

    /// Sets a column of the new row.
    pub fn value(mut self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.row.insert(column, value);
        self
    }

    /// Replaces the whole row.
    pub fn row(mut self, row: Row) -> Self {
        self.row = row;
        self
    }

    /// Names the row for `["named-uuid", name]` references in later operations.
    pub fn uuid_name(mut self, name: impl Into<String>) -> Self {
        self.uuid_name = Some(name.into());
        self
    }
}

/// `select`: read rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The table.
    pub table: String,
    /// Rows must match all conditions; none selects every row.
    pub conditions: Vec<Condition>,
    /// Columns to return; `None` returns all (including `_uuid` and `_version`).
    pub columns: Option<Vec<String>>,
}

impl Select {
    /// Selects every row of `table`, all columns.
    pub fn new(table: impl Into<String>) -> Self {
        Select {
            table: table.into(),
            conditions: Vec::new(),
            columns: None,
        }
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds `column == value`.
    pub fn where_eq(self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.condition(Condition::eq(column, value))
    }

    /// Restricts the returned columns.
    pub fn columns<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
}

/// `update`: overwrite columns of matching rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The table.
    pub table: String,
    /// Rows must match all conditions.
    pub conditions: Vec<Condition>,
    /// The columns to set.
    pub row: Row,
}

impl Update {
    /// Updates rows of `table` (add conditions, or every row is updated).
    pub fn new(table: impl Into<String>) -> Self {
        Update {
            table: table.into(),
            conditions: Vec::new(),
            row: Row::new(),
        }
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds `column == value`.
    pub fn where_eq(self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.condition(Condition::eq(column, value))
    }

    /// Sets a column.
    pub fn value(mut self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.row.insert(column, value);
        self
    }
}

/// `mutate`: change columns of matching rows relative to their current value.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutate {
    /// The table.
    pub table: String,
    /// Rows must match all conditions.
    pub conditions: Vec<Condition>,
    /// The changes.
    pub mutations: Vec<Mutation>,
}

impl Mutate {
    /// Mutates rows of `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Mutate {
            table: table.into(),
            conditions: Vec::new(),
            mutations: Vec::new(),
        }
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds `column == value`.
    pub fn where_eq(self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.condition(Condition::eq(column, value))
    }

    /// Adds a mutation.
    pub fn mutation(mut self, mutation: Mutation) -> Self {
        self.mutations.push(mutation);
        self
    }
}

/// `delete`: remove matching rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The table.
    pub table: String,
    /// Rows must match all conditions.
    pub conditions: Vec<Condition>,
}

impl Delete {
    /// Deletes rows of `table` (add conditions, or every row is deleted).
    pub fn new(table: impl Into<String>) -> Self {
        Delete {
            table: table.into(),
            conditions: Vec::new(),
        }
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Adds `column == value`.
    pub fn where_eq(self, column: impl Into<String>, value: impl Into<Datum>) -> Self {
        self.condition(Condition::eq(column, value))
    }
}

/// Whether a `wait` waits for the rows to become equal or unequal to the expected rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

/// `wait`: make the transaction wait (up to a timeout) until the selected columns of the
/// matching rows are (or are not) exactly the given rows. With a zero timeout it is an
/// assertion that fails immediately with `"timed out"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// The table.
    pub table: String,
    /// Rows must match all conditions.
    pub conditions: Vec<Condition>,
    /// The columns compared.
    pub columns: Vec<String>,
    /// Equal or not equal.
    pub until: WaitUntil,
    /// The expected rows (only the listed columns).
    pub rows: Vec<Row>,
    /// How long the server may wait; `None` waits forever.
    pub timeout: Option<Duration>,
}

impl Wait {
    /// Waits until the matching rows of `table`, restricted to `columns`, compare to `rows`
    /// as `until` says.
    pub fn new<I, S>(table: impl Into<String>, columns: I, until: WaitUntil, rows: Vec<Row>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Wait {
            table: table.into(),
            conditions: Vec::new(),
            columns: columns.into_iter().map(Into::into).collect(),
            until,
            rows,
            timeout: None,
        }
    }

    /// Adds a condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Sets the timeout (millisecond resolution on the wire).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// One operation of a `transact`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// See [`Insert`].
    Insert(Insert),
    /// See [`Select`].
    Select(Select),
    /// See [`Update`].
    Update(Update),
    /// See [`Mutate`].
    Mutate(Mutate),
    /// See [`Delete`].
    Delete(Delete),
    /// See [`Wait`].
    Wait(Wait),
    /// `commit`: with `durable`, the reply waits until the change is on disk.
    Commit {
        /// Wait for the change to be durable.
        durable: bool,
    },
    /// `abort`: fail the transaction on purpose.
    Abort,
    /// `comment`: text for the server's log.
    Comment(String),
    /// `assert`: fail unless this connection holds the named lock.
    Assert {
        /// The lock name.
        lock: String,
    },
    /// Any operation as raw JSON, sent unchanged.
    Raw(Value),
}

impl Operation {
    /// A `comment` operation.
    pub fn comment(text: impl Into<String>) -> Self {
        Operation::Comment(text.into())
    }

    /// The operation name (`"insert"`, …); for [`Operation::Raw`] its `op` member.
    pub fn name(&self) -> &str {
        match self {
            Operation::Insert(_) => "insert",
            Operation::Select(_) => "select",
            Operation::Update(_) => "update",
            Operation::Mutate(_) => "mutate",
            Operation::Delete(_) => "delete",
            Operation::Wait(_) => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment(_) => "comment",
            Operation::Assert { .. } => "assert",
            Operation::Raw(v) => v.get("op").and_then(Value::as_str).unwrap_or("raw"),
        }
    }

    /// The JSON form sent to the server.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("op".into(), json!(self.name()));
        match self {
            Operation::Insert(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("row".into(), op.row.to_json());
                if let Some(name) = &op.uuid_name {
                    m.insert("uuid-name".into(), json!(name));
                }
            }
            Operation::Select(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("where".into(), conditions_json(&op.conditions));
                if let Some(columns) = &op.columns {
                    m.insert("columns".into(), json!(columns));
                }
            }
            Operation::Update(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("where".into(), conditions_json(&op.conditions));
                m.insert("row".into(), op.row.to_json());
            }
            Operation::Mutate(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("where".into(), conditions_json(&op.conditions));
                m.insert(
                    "mutations".into(),
                    Value::Array(op.mutations.iter().map(Mutation::to_json).collect()),
                );
            }
            Operation::Delete(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("where".into(), conditions_json(&op.conditions));
            }
            Operation::Wait(op) => {
                m.insert("table".into(), json!(op.table));
                m.insert("where".into(), conditions_json(&op.conditions));
                m.insert("columns".into(), json!(op.columns));
                m.insert(
                    "until".into(),
                    json!(match op.until {
                        WaitUntil::Equal => "==",
                        WaitUntil::NotEqual => "!=",
                    }),
                );
                m.insert(
                    "rows".into(),
                    Value::Array(op.rows.iter().map(Row::to_json).collect()),
                );
                if let Some(timeout) = op.timeout {
                    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                    m.insert("timeout".into(), json!(ms));
                }
            }
            Operation::Commit { durable } => {
                m.insert("durable".into(), json!(durable));
            }
            Operation::Abort => {}
            Operation::Comment(text) => {
                m.insert("comment".into(), json!(text));
            }
            Operation::Assert { lock } => {
                m.insert("lock".into(), json!(lock));
            }
            Operation::Raw(v) => return v.clone(),
        }
        Value::Object(m)
    }
}

macro_rules! into_operation {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Operation {
            fn from(op: $ty) -> Self {
                Operation::$ty(op)
            }
        }
    )*};
}
into_operation!(Insert, Select, Update, Mutate, Delete, Wait);

impl From<Value> for Operation {
    fn from(raw: Value) -> Self {
        Operation::Raw(raw)
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationResult {
    /// For `select`: the rows.
    pub rows: Option<Vec<Row>>,
    /// For `insert`: the new row's UUID.
    pub uuid: Option<Uuid>,
    /// For `update`, `mutate` and `delete`: how many rows matched.
    pub count: Option<u64>,
    /// The result object as received.
    pub raw: Value,
}

impl OperationResult {
    pub(crate) fn from_json(json: &Value, index: usize) -> Result<Self, DataError> {
        let what = || format!("transact result {index}");
        let obj = json.as_object().ok_or_else(|| {
            DataError::malformed(
                what(),
                format!("expected an object, found {}", abbreviate_json(json)),
            )
        })?;
        let rows = match obj.get("rows") {
            None => None,
            Some(Value::Array(rows)) => Some(
                rows.iter()
                    .map(Row::from_json)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(DataError::malformed(what(), "\"rows\" is not an array")),
        };
        let uuid = match obj.get("uuid") {
            None => None,
            Some(u) => match Datum::from_json(u)? {
                Datum::Atom(crate::data::Atom::Uuid(u)) => Some(u),
                _ => return Err(DataError::malformed(what(), "\"uuid\" is not a uuid")),
            },
        };
        let count = match obj.get("count") {
            None => None,
            Some(c) => Some(
                c.as_u64()
                    .ok_or_else(|| DataError::malformed(what(), "\"count\" is not a number"))?,
            ),
        };
        Ok(OperationResult {
            rows,
            uuid,
            count,
            raw: json.clone(),
        })
    }

    /// The selected rows (empty for operations that return none).
    pub fn rows(&self) -> &[Row] {
        self.rows.as_deref().unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Atom;

    #[test]
    fn operations_serialize_as_rfc_7047_says() {
        let insert: Operation = Insert::new("Bridge")
            .value("name", "br0")
            .value("ports", Datum::set([Atom::NamedUuid("p".into())]))
            .uuid_name("br")
            .into();
        assert_eq!(
            insert.to_json(),
            json!({"op": "insert", "table": "Bridge", "uuid-name": "br",
                   "row": {"name": "br0", "ports": ["set", [["named-uuid", "p"]]]}})
        );
        let wait: Operation = Wait::new(
            "Bridge",
            ["name"],
            WaitUntil::Equal,
            vec![Row::new().with("name", "x")],
        )
        .timeout(Duration::from_millis(0))
        .into();
        assert_eq!(
            wait.to_json(),
            json!({"op": "wait", "table": "Bridge", "where": [], "columns": ["name"],
                   "until": "==", "rows": [{"name": "x"}], "timeout": 0})
        );
        let mutate: Operation = Mutate::new("Interface")
            .where_eq("name", "p1")
            .mutation(Mutation::insert("external_ids", Datum::map([("k", "v")])))
            .into();
        assert_eq!(
            mutate.to_json(),
            json!({"op": "mutate", "table": "Interface", "where": [["name", "==", "p1"]],
                   "mutations": [["external_ids", "insert", ["map", [["k", "v"]]]]]})
        );
        assert_eq!(
            Operation::comment("hi").to_json(),
            json!({"op": "comment", "comment": "hi"})
        );
        assert_eq!(Operation::Raw(json!({"op": "frob"})).name(), "frob");
    }

    #[test]
    fn results_parse() {
        let r = OperationResult::from_json(
            &json!({"uuid": ["uuid", "3410a295-c0b5-42b9-b8cf-fc7944be60df"]}),
            0,
        )
        .unwrap();
        assert!(r.uuid.is_some());
        let r = OperationResult::from_json(&json!({"rows": [{"name": "x"}]}), 0).unwrap();
        assert_eq!(r.rows().len(), 1);
        let r = OperationResult::from_json(&json!({"count": 2}), 0).unwrap();
        assert_eq!(r.count, Some(2));
        assert!(OperationResult::from_json(&json!({"rows": 1}), 3)
            .unwrap_err()
            .to_string()
            .contains("transact result 3"));
    }
}
