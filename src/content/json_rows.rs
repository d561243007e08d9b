//! `json_v2_0`: `{"params": {…}, "tenants": [ usage objects ]}`. Which keys a report's usage
//! objects carry, and where the SKU sits, is not public, so a usage object is recognised by the
//! keys of the documented tenant service usage object (`usage_name`, or `name` with `value`,
//! `absolute_value` or a `usage.*` measure), at any depth under `tenants`, never by position.
//! Nested objects of a usage object are read as dotted keys (`offering_item.sku`). Tenant fields
//! a usage object lacks are taken from the objects around it, as far as they were read before
//! it. The document is walked, not built: memory follows one object, not the file.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::columns::{Field, Positions, normalise};
use super::limit::{Kind, Limited, TooLong};
use super::{Amount, ContentError, Layout, Measure, Measures, NotAnAmount, UsageRow};

/// Keys kept of one object: more is not a usage object but an attack on memory.
const MAX_KEYS: usize = 1024;
/// Distinct keys remembered for the message when no usage object is found.
const KEYS_SHOWN: usize = 60;

pub(super) fn read(
    reader: impl BufRead,
    on_row: &mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
) -> Result<Layout, ContentError> {
    let mut state = State {
        on_row,
        layout: Layout::default(),
        context: Vec::new(),
        error: None,
        top_keys: Vec::new(),
        keys_seen: BTreeSet::new(),
        objects: 0,
        tenants: false,
    };
    // Limited buffers by itself: serde_json reads byte by byte from it.
    let mut deserializer =
        serde_json::Deserializer::from_reader(Limited::new(reader, Kind::JsonToken));
    let walked = Top { state: &mut state }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Some(error) = state.error.take() {
        return Err(error);
    }
    if let Err(error) = walked {
        return Err(json_error(error));
    }
    if !state.tenants {
        return Err(ContentError::Layout {
            what: "the json_v2_0 document has no `tenants` array",
            found: state.top_keys,
            expected: vec!["params".into(), "tenants".into()],
        });
    }
    if state.layout.rows == 0 && state.objects > 0 {
        return Err(ContentError::Layout {
            what: "no object under `tenants` has the keys of a usage object",
            found: state.keys_seen.into_iter().collect(),
            expected: vec![
                "usage_name (or name with value, absolute_value or usage.*)".into(),
                "tenant_uuid".into(),
            ],
        });
    }
    Ok(state.layout)
}

fn json_error(error: serde_json::Error) -> ContentError {
    if error.io_error_kind().is_some() {
        let error = io::Error::from(error);
        return match TooLong::of(&error) {
            Some(too_long) => ContentError::TooLong(too_long.to_string()),
            None => ContentError::Read(error),
        };
    }
    ContentError::Syntax(format!("not valid JSON: {error}"))
}

struct State<'r> {
    on_row: &'r mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
    layout: Layout,
    /// Tenant fields of the objects around the current one, innermost last.
    context: Vec<Context>,
    /// Why the walk stopped, when it was not the JSON's syntax.
    error: Option<ContentError>,
    top_keys: Vec<String>,
    keys_seen: BTreeSet<String>,
    /// Objects seen under `tenants`.
    objects: u64,
    tenants: bool,
}

impl State<'_> {
    fn stop<E: de::Error>(&mut self, error: ContentError) -> E {
        self.error = Some(error);
        E::custom("stopped")
    }
}

#[derive(Clone, Debug, Default)]
struct Context {
    id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
}

/// A scalar as read: text, or a number both parsed and as text.
#[derive(Clone, Debug)]
enum Scalar {
    Text(String),
    Number(Option<Amount>, String),
    Bool(bool),
    Null,
    /// An array or object where a measure was expected: kept so that the usage object is
    /// refused, not skipped.
    Compound(&'static str),
}

impl Scalar {
    fn text(&self) -> Option<&str> {
        match self {
            Scalar::Text(text) | Scalar::Number(_, text) => Some(text),
            Scalar::Bool(_) | Scalar::Null | Scalar::Compound(_) => None,
        }
    }

    /// A measure from its own text: a JSON number through an `f64` loses digits beyond the
    /// 17th (`12345678.123456789` became `12345678.123456787`), so it is parsed exactly here.
    fn of_raw(raw: &str) -> Scalar {
        let raw = raw.trim();
        match raw.as_bytes().first() {
            Some(b'"') => Scalar::Text(serde_json::from_str(raw).unwrap_or_else(|_| raw.into())),
            Some(b'[') => Scalar::Compound("an array"),
            Some(b'{') => Scalar::Compound("an object"),
            Some(b't') => Scalar::Bool(true),
            Some(b'f') => Scalar::Bool(false),
            Some(b'n') | None => Scalar::Null,
            Some(_) => Scalar::Number(Amount::parse(raw), raw.to_owned()),
        }
    }
}

/// Whether a (dotted, normalised) key names a measure.
fn is_measure(key: &str) -> bool {
    Measure::ALL.iter().any(|m| m.name() == key)
}

type Fields = Vec<(String, Scalar)>;

fn get<'f>(fields: &'f Fields, names: &[&str]) -> Option<&'f Scalar> {
    names
        .iter()
        .find_map(|name| fields.iter().find(|(key, _)| key == name).map(|(_, v)| v))
}

fn context_of(fields: &Fields) -> Context {
    let text = |names: &[&str]| {
        get(fields, names)
            .and_then(Scalar::text)
            .map(str::to_owned)
            .filter(|t| !t.is_empty())
    };
    Context {
        id: text(&[
            "tenant_uuid",
            "tenant.id",
            "tenant.uuid",
            "uuid",
            "id",
            "tenant_id",
        ]),
        name: text(&["tenant_name", "tenant.name", "name"]),
        kind: text(&["tenant_kind", "tenant.kind", "kind"]),
    }
}

/// A usage object has `usage_name`, or `name` with a measure, or a measure by its exact name:
/// an object with `value` but no `name` is a usage object missing its name (an error), not
/// something to skip.
fn is_usage_object(fields: &Fields) -> bool {
    let has = |name: &str| fields.iter().any(|(key, _)| key == name);
    has("usage_name")
        || fields.iter().any(|(key, _)| is_measure(key))
        || (has("name") && fields.iter().any(|(key, _)| key.starts_with("usage.")))
}

/// The document: an object whose `tenants` holds the usage objects; everything else skipped.
struct Top<'s, 'r> {
    state: &'s mut State<'r>,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a json_v2_0 report: an object with `params` and `tenants`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if self.state.top_keys.len() < KEYS_SHOWN {
                self.state.top_keys.push(key.clone());
            }
            if key == "tenants" {
                if self.state.tenants {
                    // Both would be read: the usage of the first counted twice, or twice over.
                    return Err(self.state.stop(ContentError::Layout {
                        what: "the json_v2_0 document has `tenants` twice",
                        found: self.state.top_keys.clone(),
                        expected: vec!["params".into(), "tenants".into()],
                    }));
                }
                self.state.tenants = true;
                map.next_value_seed(Node {
                    state: &mut *self.state,
                    prefix: String::new(),
                    fields: None,
                    place: Place::Tenants,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Where a value stands alone (without `fields`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The value of `tenants`: must be an array.
    Tenants,
    /// An element of `tenants` (or of an array in it): an object or an array, never a scalar.
    Element,
    /// Anywhere else (an array of an object, say `tags`): scalars are skipped.
    Inner,
}

/// One value under `tenants`. With `fields`, it belongs to the object being read (under the key
/// `prefix`); without, it stands alone (an element of an array, or `tenants` itself).
struct Node<'s, 'r, 'f> {
    state: &'s mut State<'r>,
    prefix: String,
    fields: Option<&'f mut Fields>,
    place: Place,
}

impl Node<'_, '_, '_> {
    /// A scalar, or an array or object standing where usage objects must be.
    fn misplaced<E: de::Error>(self, what: &str) -> E {
        let detail = match self.place {
            Place::Tenants => format!("`tenants` is {what}, not an array of usage objects"),
            _ => format!("`tenants` holds {what} where usage objects are expected"),
        };
        self.state.stop(ContentError::Syntax(detail))
    }

    fn scalar<E: de::Error>(self, scalar: Scalar) -> Result<(), E> {
        if self.fields.is_none() && self.place != Place::Inner {
            let what = match &scalar {
                Scalar::Text(_) => "a string",
                Scalar::Number(..) => "a number",
                Scalar::Bool(_) => "a boolean",
                Scalar::Null | Scalar::Compound(_) => "null",
            };
            return Err(self.misplaced(what));
        }
        if let Some(fields) = self.fields {
            if fields.len() >= MAX_KEYS {
                return Err(self.state.stop(ContentError::Syntax(format!(
                    "an object under `tenants` has more than {MAX_KEYS} keys"
                ))));
            }
            fields.push((self.prefix, scalar));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.fields.is_some() && is_measure(&self.prefix) {
            let raw = <Box<serde_json::value::RawValue>>::deserialize(deserializer)?;
            return self.scalar(Scalar::of_raw(raw.get()));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(Scalar::Number(Amount::from_i128(v.into()), v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(Scalar::Number(Amount::from_i128(v.into()), v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(Scalar::Number(Amount::from_f64(v), v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.scalar(Scalar::Text(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // An array inside an object: the object's tenant fields so far are the context of the
        // usage objects inside it.
        let pushed = match &self.fields {
            Some(fields) => {
                self.state.context.push(context_of(fields));
                true
            }
            None => false,
        };
        let place = match (pushed, self.place) {
            (false, Place::Tenants | Place::Element) => Place::Element,
            _ => Place::Inner,
        };
        while seq
            .next_element_seed(Node {
                state: &mut *self.state,
                prefix: String::new(),
                fields: None,
                place,
            })?
            .is_some()
        {}
        if pushed {
            self.state.context.pop();
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.fields.is_none() && self.place == Place::Tenants {
            return Err(self.misplaced("an object"));
        }
        let Node {
            state,
            prefix,
            fields,
            ..
        } = self;
        // A nested object of an object: its keys join the outer object's, dotted.
        if let Some(fields) = fields {
            while let Some(key) = map.next_key::<String>()? {
                let key = format!("{prefix}.{}", normalise(&key));
                map.next_value_seed(Node {
                    state: &mut *state,
                    prefix: key,
                    fields: Some(&mut *fields),
                    place: Place::Inner,
                })?;
            }
            return Ok(());
        }
        state.objects += 1;
        let mut own: Fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(Node {
                state: &mut *state,
                prefix: normalise(&key),
                fields: Some(&mut own),
                place: Place::Inner,
            })?;
        }
        if !is_usage_object(&own) {
            for (key, _) in &own {
                if state.keys_seen.len() >= KEYS_SHOWN {
                    break;
                }
                state.keys_seen.insert(key.clone());
            }
            return Ok(());
        }
        state.layout.rows += 1;
        let at = state.layout.rows;
        let State {
            on_row,
            layout,
            context,
            ..
        } = &mut *state;
        match emit(&mut **on_row, context, layout, &own, at) {
            Ok(()) => Ok(()),
            Err(error) => Err(state.stop(error)),
        }
    }
}

/// Hands one usage object to the callback.
fn emit(
    on_row: &mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
    context: &[Context],
    layout: &mut Layout,
    fields: &Fields,
    at: u64,
) -> Result<(), ContentError> {
    let names: Vec<String> = fields.iter().map(|(key, _)| key.clone()).collect();
    let positions = Positions::find(&names);
    let data = |field: &str, detail: String| ContentError::Data {
        at: format!("usage object {at}"),
        field: format!("`{field}`"),
        detail,
    };
    // A key read twice (`value` twice, or `usage.absolute.total` both nested and dotted) leaves
    // it open which holds the value: most readers keep the last, this one would keep the first.
    if let Some(name) = positions.read_twice(&names).next() {
        return Err(data(
            name,
            "the usage object has this key twice; which one holds its value is not said".into(),
        ));
    }
    let text = |field: Field| -> &str {
        positions
            .field(field)
            .and_then(|i| fields[i].1.text())
            .map_or("", str::trim)
    };
    let around = |pick: fn(&Context) -> Option<&String>| -> &str {
        context
            .iter()
            .rev()
            .find_map(pick)
            .map_or("", String::as_str)
    };
    let tenant_id = match text(Field::TenantId) {
        "" => around(|c| c.id.as_ref()),
        own => own,
    };
    if tenant_id.is_empty() {
        return Err(data(
            "tenant_uuid",
            "missing: neither the usage object nor an object around it names its tenant".into(),
        ));
    }
    let tenant_kind = match text(Field::TenantKind) {
        "" => around(|c| c.kind.as_ref()),
        own => own,
    };
    let tenant_name = match text(Field::TenantName) {
        "" => around(|c| c.name.as_ref()),
        own => own,
    };
    let offering_item = text(Field::OfferingItem);
    if offering_item.is_empty() {
        return Err(data(
            "name",
            "missing or empty: every usage object must name its offering item".into(),
        ));
    }
    let mut measures = Measures::default();
    for measure in Measure::ALL {
        let Some(i) = positions.measures[measure as usize] else {
            continue;
        };
        let amount = match &fields[i].1 {
            Scalar::Null => None,
            Scalar::Number(Some(amount), _) => Some(*amount),
            Scalar::Text(text) if Amount::parse(text).is_some() => Amount::parse(text),
            other => {
                let why = |t: &str| {
                    Amount::parse_why(t)
                        .err()
                        .unwrap_or(NotAnAmount::NotANumber)
                };
                return Err(data(
                    measure.name(),
                    match other {
                        Scalar::Text(t) => {
                            format!("\"{}\" {}", crate::api::one_line(t, 40), why(t))
                        }
                        Scalar::Number(_, t) => {
                            format!("{} {}", crate::api::one_line(t, 40), why(t))
                        }
                        Scalar::Bool(b) => format!("{b} is not a number"),
                        Scalar::Null => "null is not a number".into(),
                        Scalar::Compound(what) => format!("{what} is not a number"),
                    },
                ));
            }
        };
        measures.set(measure, amount);
    }
    let sku = positions
        .sku
        .map(|i| fields[i].1.text().unwrap_or("").trim());
    if layout.sku_column.is_none()
        && let Some(i) = positions.sku
    {
        layout.sku_column = Some(fields[i].0.clone());
    }
    let row = UsageRow {
        at,
        at_kind: "usage object",
        tenant_id,
        tenant_kind,
        tenant_name,
        offering_item,
        usage_name: text(Field::UsageName),
        edition: text(Field::Edition),
        infra_backend: text(Field::InfraBackend),
        sku,
        unit: text(Field::Unit),
        day: text(Field::Day),
        measures,
    };
    on_row(&row).map_err(ContentError::Sink)
}
