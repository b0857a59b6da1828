//! Monitor requests and the updates they produce: RFC 7047 `monitor` / `update`
//! (section 4.1.5–4.1.6) and the `monitor_cond` / `update2` extension of ovsdb-server(7)
//! section 4.1.12–4.1.14.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use crate::data::{Atom, Datum, Row, Uuid};
use crate::error::{abbreviate_json, DataError};
use crate::ops::Condition;
use crate::schema::DatabaseSchema;

/// Which kinds of change a monitor reports (`<monitor-select>`). All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSelect {
    /// Send the current rows in the reply.
    pub initial: bool,
    /// Report inserted rows.
    pub insert: bool,
    /// Report deleted rows.
    pub delete: bool,
    /// Report modified rows.
    pub modify: bool,
}

impl Default for MonitorSelect {
    fn default() -> Self {
        MonitorSelect {
            initial: true,
            insert: true,
            delete: true,
            modify: true,
        }
    }
}

/// What to monitor in one table (`<monitor-request>` / `<monitor-cond-request>`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRequest {
    /// The table.
    pub table: String,
    /// Columns to report; `None` reports all of them.
    pub columns: Option<Vec<String>>,
    /// Which changes to report.
    pub select: MonitorSelect,
    /// For `monitor_cond` only: report only rows matching one of these conditions; empty
    /// means every row. Ignored (not sent) by plain `monitor`, which has no conditions.
    pub conditions: Vec<Condition>,
}

impl MonitorRequest {
    /// Monitors every column of every row of `table`.
    pub fn new(table: impl Into<String>) -> Self {
        MonitorRequest {
            table: table.into(),
            columns: None,
            select: MonitorSelect::default(),
            conditions: Vec::new(),
        }
    }

    /// Restricts the reported columns.
    pub fn columns<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Chooses which changes to report.
    pub fn select(mut self, select: MonitorSelect) -> Self {
        self.select = select;
        self
    }

    /// Adds a `monitor_cond` condition (rows matching any condition are reported).
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    fn to_json(&self, conditional: bool) -> Value {
        let mut m = Map::new();
        if let Some(columns) = &self.columns {
            m.insert("columns".into(), json!(columns));
        }
        m.insert(
            "select".into(),
            json!({
                "initial": self.select.initial,
                "insert": self.select.insert,
                "delete": self.select.delete,
                "modify": self.select.modify,
            }),
        );
        if conditional && !self.conditions.is_empty() {
            m.insert(
                "where".into(),
                Value::Array(self.conditions.iter().map(Condition::to_json).collect()),
            );
        }
        Value::Object(m)
    }
}

/// Builds the `<monitor-requests>` object: table name to an array of requests.
pub(crate) fn monitor_requests_json(requests: &[MonitorRequest], conditional: bool) -> Value {
    let mut by_table: Map<String, Value> = Map::new();
    for request in requests {
        let entry = by_table
            .entry(request.table.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(request.to_json(conditional));
        }
    }
    Value::Object(by_table)
}

fn parse_table_map<T>(
    json: &Value,
    what: &str,
    mut parse_row: impl FnMut(&str, Uuid, &Value) -> Result<T, DataError>,
) -> Result<BTreeMap<String, BTreeMap<Uuid, T>>, DataError> {
    let tables = json.as_object().ok_or_else(|| {
        DataError::malformed(
            what,
            format!("expected an object, found {}", abbreviate_json(json)),
        )
    })?;
    let mut out = BTreeMap::new();
    for (table, rows) in tables {
        let rows = rows.as_object().ok_or_else(|| {
            DataError::malformed(format!("{what} table {table}"), "expected an object")
        })?;
        let mut parsed = BTreeMap::new();
        for (uuid, update) in rows {
            let uuid: Uuid = uuid.parse()?;
            parsed.insert(uuid, parse_row(table, uuid, update)?);
        }
        out.insert(table.clone(), parsed);
    }
    Ok(out)
}

/// A row change as plain `monitor` reports it (`<row-update>`).
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    /// The row before the change: absent for inserts (and initial rows); for modifications,
    /// only the columns that changed.
    pub old: Option<Row>,
    /// The row after the change (all monitored columns): absent for deletions.
    pub new: Option<Row>,
}

/// A `<table-updates>` object from `monitor`: table to row UUID to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUpdates {
    /// Changes by table, then by row UUID.
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowUpdate>>,
}

impl TableUpdates {
    /// Parses a `<table-updates>` object.
    pub fn from_json(json: &Value) -> Result<Self, DataError> {
        let tables = parse_table_map(json, "table-updates", |table, uuid, update| {
            let what = || format!("table-updates {table} row {uuid}");
            let obj = update
                .as_object()
                .ok_or_else(|| DataError::malformed(what(), "expected an object"))?;
            let old = obj.get("old").map(Row::from_json).transpose()?;
            let new = obj.get("new").map(Row::from_json).transpose()?;
            if old.is_none() && new.is_none() {
                return Err(DataError::malformed(what(), "neither \"old\" nor \"new\""));
            }
            Ok(RowUpdate { old, new })
        })?;
        Ok(TableUpdates { tables })
    }

    /// Every change, as (table, row UUID, change).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Uuid, &RowUpdate)> {
        self.tables
            .iter()
            .flat_map(|(t, rows)| rows.iter().map(move |(u, r)| (t.as_str(), *u, r)))
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }
}

/// A row change as `monitor_cond` reports it (`<row-update2>`).
#[derive(Debug, Clone, PartialEq)]
pub enum RowUpdate2 {
    /// A row present when the monitor started. Columns holding their default value are left
    /// out.
    Initial(Row),
    /// A row inserted (or newly matching the monitor's conditions). Columns holding their
    /// default value are left out.
    Insert(Row),
    /// Changed columns only, each as a *diff*: the new value for scalars and optional
    /// scalars, the symmetric difference for sets, and for maps the added, removed and
    /// changed pairs. Apply it with [`TableReplica`], which knows the column types.
    Modify(Row),
    /// The row was deleted (or no longer matches the monitor's conditions).
    Delete,
}

impl RowUpdate2 {
    /// The kind of change: `"initial"`, `"insert"`, `"modify"` or `"delete"`.
    pub fn kind(&self) -> &'static str {
        match self {
            RowUpdate2::Initial(_) => "initial",
            RowUpdate2::Insert(_) => "insert",
            RowUpdate2::Modify(_) => "modify",
            RowUpdate2::Delete => "delete",
        }
    }
}

/// A `<table-updates2>` object from `monitor_cond`: table to row UUID to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUpdates2 {
    /// Changes by table, then by row UUID.
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowUpdate2>>,
}

impl TableUpdates2 {
    /// Parses a `<table-updates2>` object.
    pub fn from_json(json: &Value) -> Result<Self, DataError> {
        let tables = parse_table_map(json, "table-updates2", |table, uuid, update| {
            let what = || format!("table-updates2 {table} row {uuid}");
            let obj = update
                .as_object()
                .ok_or_else(|| DataError::malformed(what(), "expected an object"))?;
            let mut members = obj.iter();
            let (Some((kind, row)), None) = (members.next(), members.next()) else {
                return Err(DataError::malformed(what(), "expected exactly one member"));
            };
            Ok(match kind.as_str() {
                "initial" => RowUpdate2::Initial(Row::from_json(row)?),
                "insert" => RowUpdate2::Insert(Row::from_json(row)?),
                "modify" => RowUpdate2::Modify(Row::from_json(row)?),
                "delete" => RowUpdate2::Delete,
                other => {
                    return Err(DataError::malformed(
                        what(),
                        format!("unknown change kind {other:?}"),
                    ))
                }
            })
        })?;
        Ok(TableUpdates2 { tables })
    }

    /// Every change, as (table, row UUID, change).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Uuid, &RowUpdate2)> {
        self.tables
            .iter()
            .flat_map(|(t, rows)| rows.iter().map(move |(u, r)| (t.as_str(), *u, r)))
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }
}

/// A client-side copy of monitored tables, kept current by applying `monitor_cond` updates.
///
/// update2 `modify` diffs cannot be applied without the schema (the JSON of a one-element
/// set diff looks the same as a new scalar value), so the replica is built from the
/// database's [`DatabaseSchema`].
#[derive(Debug, Clone)]
pub struct TableReplica {
    schema: DatabaseSchema,
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
}

impl TableReplica {
    /// An empty replica of a database with this schema.
    pub fn new(schema: DatabaseSchema) -> Self {
        TableReplica {
            schema,
            tables: BTreeMap::new(),
        }
    }

    /// The schema the replica interprets updates with.
    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    /// Forgets every row and loads a fresh initial state (after connecting or reconnecting).
    pub fn reset(&mut self, initial: &TableUpdates2) -> Result<(), DataError> {
        self.tables.clear();
        self.apply(initial)
    }

    /// Applies one update. On error the replica may be partially updated; callers should
    /// treat it as stale and [`reset`](Self::reset) from a new initial state.
    pub fn apply(&mut self, updates: &TableUpdates2) -> Result<(), DataError> {
        for (table, rows) in &updates.tables {
            let table_schema = self.schema.tables.get(table).ok_or_else(|| {
                DataError::malformed(
                    format!("update for table {table}"),
                    "no such table in the schema",
                )
            })?;
            let replica = self.tables.entry(table.clone()).or_default();
            for (uuid, update) in rows {
                match update {
                    RowUpdate2::Initial(row) | RowUpdate2::Insert(row) => {
                        replica.insert(*uuid, row.clone());
                    }
                    RowUpdate2::Delete => {
                        replica.remove(uuid);
                    }
                    RowUpdate2::Modify(diff) => {
                        let row = replica.entry(*uuid).or_default();
                        for (column, change) in diff.iter() {
                            // Implicit columns are not in the schema. ovsdb-server includes
                            // `_version` in updates when no column list was given; both are
                            // scalar UUIDs, so the diff is the new value.
                            if column == "_uuid" || column == "_version" {
                                row.insert(column, change.clone());
                                continue;
                            }
                            let column_type = &table_schema
                                .columns
                                .get(column)
                                .ok_or_else(|| DataError::UnknownColumn {
                                    table: table.clone(),
                                    column: column.to_owned(),
                                })?
                                .column_type;
                            let old = row
                                .get(column)
                                .cloned()
                                .unwrap_or_else(|| column_type.default_datum());
                            let new =
                                apply_column_diff(&old, change, column_type).map_err(|reason| {
                                    DataError::malformed(
                                        format!(
                                            "update2 modify of {table} row {uuid} column {column}"
                                        ),
                                        reason,
                                    )
                                })?;
                            row.insert(column, new);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The rows of a table (empty if the table is not monitored or has no rows).
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (Uuid, &Row)> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|rows| rows.iter().map(|(u, r)| (*u, r)))
    }

    /// One row.
    pub fn row(&self, table: &str, uuid: Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(&uuid)
    }

    /// Number of rows in a table.
    pub fn len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, BTreeMap::len)
    }
}

/// Applies one column's update2 diff to its old value (ovsdb-server(7) section 4.1.14).
fn apply_column_diff(
    old: &Datum,
    diff: &Datum,
    column_type: &crate::schema::ColumnType,
) -> Result<Datum, &'static str> {
    if column_type.is_map() {
        let mut pairs: Vec<(Atom, Atom)> = old.pairs().ok_or("old value is not a map")?.to_vec();
        for (key, value) in diff.pairs().ok_or("diff of a map column is not a map")? {
            match pairs.iter().position(|(k, _)| k == key) {
                None => pairs.push((key.clone(), value.clone())),
                // A pair identical to the old one means the key was removed.
                Some(i) if pairs[i].1 == *value => {
                    pairs.remove(i);
                }
                Some(i) => pairs[i].1 = value.clone(),
            }
        }
        return Ok(Datum::Map(pairs));
    }
    let diff_atoms = diff.atoms().ok_or("diff of a set column is a map")?;
    if column_type.is_scalar() {
        return Ok(diff.clone());
    }
    let old_atoms = old.atoms().ok_or("old value of a set column is a map")?;
    if column_type.is_optional_scalar() {
        // ovsdb-server 3.1 sends the new value for optional scalars ("5" then "-1", and
        // ["set",[]] when cleared). Older servers sent the symmetric difference, a two
        // element set when the value changed; accept both.
        return Ok(match diff_atoms {
            [a, b] => {
                let kept: Vec<Atom> = [a, b]
                    .into_iter()
                    .filter(|x| !old_atoms.contains(x))
                    .cloned()
                    .collect();
                Datum::Set(kept)
            }
            [only] if old_atoms == [only.clone()] => Datum::empty_set(),
            _ => diff.clone(),
        });
    }
    // Sets: the diff is the symmetric difference, so every element toggles membership.
    let toggles: HashSet<&Atom> = diff_atoms.iter().collect();
    let mut result: Vec<Atom> = old_atoms
        .iter()
        .filter(|a| !toggles.contains(a))
        .cloned()
        .collect();
    let old_set: HashSet<&Atom> = old_atoms.iter().collect();
    result.extend(diff_atoms.iter().filter(|a| !old_set.contains(a)).cloned());
    Ok(Datum::Set(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AtomicType, BaseType, ColumnType};

    fn base(atomic: AtomicType) -> BaseType {
        BaseType {
            atomic,
            enum_values: None,
            ref_table: None,
            ref_type: None,
        }
    }

    fn ty(min: u64, max: Option<u64>, map: bool) -> ColumnType {
        ColumnType {
            key: base(AtomicType::Integer),
            value: map.then(|| base(AtomicType::String)),
            min,
            max,
        }
    }

    #[test]
    fn map_diffs_add_change_and_remove_keys() {
        let old = Datum::map([(1i64, "a"), (2i64, "b")]);
        // key 1 same value -> removed, key 2 new value -> changed, key 3 -> added
        let diff = Datum::map([(1i64, "a"), (2i64, "z"), (3i64, "c")]);
        let new = apply_column_diff(&old, &diff, &ty(0, None, true)).unwrap();
        assert_eq!(new, Datum::map([(2i64, "z"), (3i64, "c")]));
    }

    #[test]
    fn set_diffs_toggle_membership() {
        let old = Datum::set([1i64, 2, 3]);
        let diff = Datum::set([2i64, 4]);
        let new = apply_column_diff(&old, &diff, &ty(0, None, false)).unwrap();
        assert_eq!(new, Datum::set([1i64, 3, 4]));
        // The bare-atom shorthand for a one-element diff.
        let new = apply_column_diff(&new, &Datum::from(1i64), &ty(0, None, false)).unwrap();
        assert_eq!(new, Datum::set([3i64, 4]));
    }

    #[test]
    fn optional_scalars_accept_new_value_and_symmetric_forms() {
        let t = ty(0, Some(1), false);
        let unset = Datum::empty_set();
        let five = Datum::from(5i64);
        assert_eq!(apply_column_diff(&unset, &five, &t).unwrap(), five);
        // 3.1 form: new value.
        assert_eq!(
            apply_column_diff(&five, &Datum::from(-1i64), &t).unwrap(),
            Datum::from(-1i64)
        );
        assert_eq!(apply_column_diff(&five, &unset, &t).unwrap(), unset);
        // Older form: symmetric difference.
        assert_eq!(
            apply_column_diff(&five, &Datum::set([5i64, -1]), &t).unwrap(),
            Datum::set([-1i64])
        );
        assert_eq!(
            apply_column_diff(&five, &Datum::set([5i64]), &t).unwrap(),
            unset
        );
    }

    #[test]
    fn table_updates2_parse_every_kind_and_reject_garbage() {
        let u = TableUpdates2::from_json(&json!({
            "Interface": {
                "3410a295-c0b5-42b9-b8cf-fc7944be60df": {"insert": {"name": "p2"}},
                "acabf608-7e01-4f6e-9339-5e6f4d9f06c0": {"modify": {"ofport": 5}},
                "b4d7ef78-73be-42d8-90b2-5be112ecdfc7": {"delete": null}
            }
        }))
        .unwrap();
        let kinds: Vec<_> = u.iter().map(|(_, _, r)| r.kind()).collect();
        assert_eq!(kinds, vec!["insert", "modify", "delete"]);
        for bad in [
            json!([]),
            json!({"T": []}),
            json!({"T": {"not-a-uuid": {"insert": {}}}}),
            json!({"T": {"3410a295-c0b5-42b9-b8cf-fc7944be60df": {"frob": {}}}}),
            json!({"T": {"3410a295-c0b5-42b9-b8cf-fc7944be60df": {}}}),
            json!({"T": {"3410a295-c0b5-42b9-b8cf-fc7944be60df": {"insert": {}, "delete": null}}}),
        ] {
            assert!(TableUpdates2::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn monitor_requests_group_by_table() {
        let json = monitor_requests_json(
            &[
                MonitorRequest::new("Bridge").columns(["name"]),
                MonitorRequest::new("Interface").condition(Condition::eq("name", "p1")),
            ],
            true,
        );
        assert_eq!(json["Bridge"][0]["columns"], json!(["name"]));
        assert_eq!(json["Interface"][0]["where"], json!([["name", "==", "p1"]]));
        let plain = monitor_requests_json(
            &[MonitorRequest::new("Interface").condition(Condition::eq("name", "p1"))],
            false,
        );
        assert!(plain["Interface"][0].get("where").is_none());
    }
}
