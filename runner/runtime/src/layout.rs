//! The layout guard: a fingerprint of the types host and logic pass to each other, compared before
//! new code may run on old values.
//!
//! The logic library exports the layout of its view of the types with [`layout!`](crate::layout)
//! (an exported function, `dylib_dev_layout`); the host declares its own view with the same list
//! in [`hot_module!`](crate::hot_module). Before a version is swapped in, the runtime compares the
//! new library's layout with the host's view and with the running version's: any difference
//! refuses the swap, naming the type and what changed, and the runner restarts the host.
//!
//! For each type: its name ([`type_name`](std::any::type_name)), size and alignment; for the
//! braced form `State { a, b }`, each field's name, type name and offset
//! ([`offset_of!`](std::mem::offset_of)). The braced form must name every field: the macro
//! destructures the type without `..`, so a field added without being listed is a compile error,
//! not a silent hole in the check.
//!
//! A type listed without fields that derives [`Layout`](macro@crate::Layout) (a [`DescribeLayout`])
//! is described by its derive: a struct's fields as above, an enum's variants in declaration order,
//! each with its name, its written discriminant (and its value, for an enum without payloads) and
//! its payload's field names and type names. A type listed without fields that does not derive it
//! gives name, size and alignment only.

use std::fmt;

/// The layout of a list of types, as one side of the boundary compiled them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The types, in the order they were listed.
    pub types: Vec<TypeLayout>,
}

/// One type's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeLayout {
    /// [`std::any::type_name`] of the type.
    pub name: String,
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// The fields, for types listed with their fields (or structs deriving `Layout`).
    pub fields: Option<Vec<FieldLayout>>,
    /// The variants in declaration order, for enums deriving `Layout`.
    pub variants: Option<Vec<VariantLayout>>,
}

/// One variant of an enum's [`TypeLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantLayout {
    /// The variant's name.
    pub name: String,
    /// The discriminant expression as written (`= 4` gives `4`), empty if none is.
    pub discriminant: String,
    /// The discriminant's value, for enums whose variants have no payload (`Self::V as i128`).
    pub value: Option<i128>,
    /// The payload's fields (`0`, `1`, ... for a tuple variant), empty for a unit variant.
    pub payload: Vec<PayloadField>,
}

/// One field of a [`VariantLayout`]'s payload (no offset: `offset_of!` into a variant is not
/// stable Rust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadField {
    /// The field's name (`0`, `1`, ... for tuple variants).
    pub name: String,
    /// [`std::any::type_name`] of the field's type.
    pub ty: String,
}

/// A type's own description for the layout guard, implemented by `#[derive(Layout)]`.
pub trait DescribeLayout {
    /// The type's layout, with its fields (struct) or variants (enum).
    fn describe() -> TypeLayout;
}

/// One field of a [`TypeLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name (`0`, `1`, ... for tuple structs).
    pub name: String,
    /// [`std::any::type_name`] of the field's type.
    pub ty: String,
    /// `offset_of`.
    pub offset: usize,
}

/// Name of the function [`layout!`](crate::layout) exports from a library.
pub const LAYOUT_SYMBOL: &str = "dylib_dev_layout";

impl Layout {
    /// The layout as text (what a library exports), tab-separated (type names hold spaces and
    /// commas, never tabs or newlines): a `T` line per type; an `F` line per field; for an enum an
    /// `E` line (so an enum without variants still reads back as an enum), then a `V` line per
    /// variant (name, discriminant text, value or empty), each followed by a `P` line per payload
    /// field. An `S` line marks a struct listed with no fields at all.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for t in &self.types {
            out.push_str(&format!("T\t{}\t{}\t{}\n", t.name, t.size, t.align));
            if t.fields.as_ref().is_some_and(Vec::is_empty) {
                out.push_str("S\n");
            }
            for f in t.fields.iter().flatten() {
                out.push_str(&format!("F\t{}\t{}\t{}\n", f.name, f.ty, f.offset));
            }
            if t.variants.is_some() {
                out.push_str("E\n");
            }
            for v in t.variants.iter().flatten() {
                let value = v.value.map(|n| n.to_string()).unwrap_or_default();
                out.push_str(&format!("V\t{}\t{}\t{value}\n", v.name, v.discriminant));
                for p in &v.payload {
                    out.push_str(&format!("P\t{}\t{}\n", p.name, p.ty));
                }
            }
        }
        out
    }

    /// Parses [`Layout::encode`]'s text; `None` if it is not such text.
    pub fn decode(text: &str) -> Option<Layout> {
        let mut types: Vec<TypeLayout> = Vec::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            match parts.as_slice() {
                ["T", name, size, align] => types.push(TypeLayout {
                    name: name.to_string(),
                    size: size.parse().ok()?,
                    align: align.parse().ok()?,
                    fields: None,
                    variants: None,
                }),
                ["S"] => {
                    types.last_mut()?.fields.get_or_insert_with(Vec::new);
                }
                ["E"] => {
                    types.last_mut()?.variants.get_or_insert_with(Vec::new);
                }
                ["V", name, discriminant, value] => {
                    types.last_mut()?.variants.as_mut()?.push(VariantLayout {
                        name: name.to_string(),
                        discriminant: discriminant.to_string(),
                        value: match *value {
                            "" => None,
                            n => Some(n.parse().ok()?),
                        },
                        payload: Vec::new(),
                    })
                }
                ["P", name, ty] => types
                    .last_mut()?
                    .variants
                    .as_mut()?
                    .last_mut()?
                    .payload
                    .push(PayloadField {
                        name: name.to_string(),
                        ty: ty.to_string(),
                    }),
                ["F", name, ty, offset] => types
                    .last_mut()?
                    .fields
                    .get_or_insert_with(Vec::new)
                    .push(FieldLayout {
                        name: name.to_string(),
                        ty: ty.to_string(),
                        offset: offset.parse().ok()?,
                    }),
                _ => return None,
            }
        }
        Some(Layout { types })
    }

    /// Why values laid out as `self` (the old side) cannot be used by code compiled as `new`:
    /// `None` if every type of `self` has the same layout in `new`. Types only `new` lists are
    /// fine: no old value of them exists. Fields are compared when both sides list them, variants
    /// when both sides derive `Layout` for the enum; otherwise the type is compared by size and
    /// alignment.
    pub fn mismatch(&self, new: &Layout) -> Option<LayoutMismatch> {
        for old in &self.types {
            let Some(now) = new.types.iter().find(|t| t.name == old.name) else {
                return Some(LayoutMismatch {
                    ty: old.name.clone(),
                    changes: vec!["no longer listed by the new build's `layout!`".into()],
                });
            };
            let changes = old.changes_to(now);
            if !changes.is_empty() {
                return Some(LayoutMismatch {
                    ty: old.name.clone(),
                    changes,
                });
            }
        }
        None
    }
}

impl TypeLayout {
    fn changes_to(&self, new: &TypeLayout) -> Vec<String> {
        let mut changes = Vec::new();
        if self.size != new.size {
            changes.push(format!("size {} -> {}", self.size, new.size));
        }
        if self.align != new.align {
            changes.push(format!("align {} -> {}", self.align, new.align));
        }
        if let (Some(old), Some(now)) = (&self.variants, &new.variants) {
            variant_changes(old, now, &mut changes);
        }
        // A side that lists the type without fields vouches for size and alignment only.
        let (Some(old_fields), Some(new_fields)) = (&self.fields, &new.fields) else {
            return changes;
        };
        for f in new_fields {
            match old_fields.iter().find(|o| o.name == f.name) {
                None => changes.push(format!("field `{}: {}` added", f.name, f.ty)),
                Some(o) if o.ty != f.ty => {
                    changes.push(format!("field `{}`: `{}` -> `{}`", f.name, o.ty, f.ty))
                }
                Some(o) if o.offset != f.offset => changes.push(format!(
                    "field `{}` moved: offset {} -> {}",
                    f.name, o.offset, f.offset
                )),
                Some(_) => {}
            }
        }
        for o in old_fields {
            if !new_fields.iter().any(|f| f.name == o.name) {
                changes.push(format!("field `{}: {}` removed", o.name, o.ty));
            }
        }
        changes
    }
}

/// How the variants of an enum changed, in words: old values are read by discriminant, so an
/// index that moves, a discriminant or a payload that changes means new code misreads them.
fn variant_changes(old: &[VariantLayout], new: &[VariantLayout], changes: &mut Vec<String>) {
    for (i, v) in new.iter().enumerate() {
        let Some((j, o)) = old.iter().enumerate().find(|(_, o)| o.name == v.name) else {
            changes.push(format!("variant `{}` added at {i}", v.name));
            continue;
        };
        if i != j {
            changes.push(format!("variant `{}` moved from {j} to {i}", v.name));
        }
        if o.discriminant != v.discriminant {
            changes.push(format!(
                "variant `{}` discriminant `{}` -> `{}`",
                v.name,
                show_discriminant(&o.discriminant),
                show_discriminant(&v.discriminant)
            ));
        } else if let (Some(a), Some(b)) = (o.value, v.value)
            && a != b
        {
            changes.push(format!("variant `{}` discriminant {a} -> {b}", v.name));
        }
        if o.payload != v.payload {
            changes.push(format!(
                "variant `{}` payload `{}` -> `{}`",
                v.name,
                show_payload(&o.payload),
                show_payload(&v.payload)
            ));
        }
    }
    for o in old {
        if !new.iter().any(|v| v.name == o.name) {
            changes.push(format!("variant `{}` removed", o.name));
        }
    }
}

fn show_discriminant(text: &str) -> &str {
    if text.is_empty() { "implicit" } else { text }
}

/// `x: f32, y: f32` for named fields, `(u32, u8)` for a tuple, `()` for no payload.
fn show_payload(payload: &[PayloadField]) -> String {
    let tuple = payload
        .iter()
        .all(|p| p.name.bytes().all(|b| b.is_ascii_digit()));
    if tuple {
        let tys: Vec<&str> = payload.iter().map(|p| p.ty.as_str()).collect();
        format!("({})", tys.join(", "))
    } else {
        let fields: Vec<String> = payload
            .iter()
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect();
        fields.join(", ")
    }
}

/// What differs between two layouts: the first type that changed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutMismatch {
    /// The type's name.
    pub ty: String,
    /// What changed, e.g. `size 8 -> 16`, ``field `extra: u32` added``.
    pub changes: Vec<String>,
}

impl fmt::Display for LayoutMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` changed ({})", self.ty, self.changes.join("; "))
    }
}

/// Autoref specialization for [`layout_of!`](crate::layout_of): `(&&Probe::<T>(..)).describe()`
/// picks [`DescribeLayout`] when `T` derives `Layout`, else name, size and alignment.
#[doc(hidden)]
pub mod probe {
    use super::{DescribeLayout, TypeLayout};
    use std::marker::PhantomData;

    /// Stands for the type `T` in the method lookup.
    pub struct Probe<T>(pub PhantomData<T>);

    /// Found first (one `&` less to strip): the type's derive.
    pub trait ViaDerive {
        /// The derived description.
        fn describe(&self) -> TypeLayout;
    }

    impl<T: DescribeLayout> ViaDerive for &Probe<T> {
        fn describe(&self) -> TypeLayout {
            T::describe()
        }
    }

    /// The fallback: what any sized type tells without a derive.
    pub trait ViaSize {
        /// Name, size and alignment.
        fn describe(&self) -> TypeLayout;
    }

    impl<T> ViaSize for Probe<T> {
        fn describe(&self) -> TypeLayout {
            TypeLayout {
                name: std::any::type_name::<T>().to_string(),
                size: std::mem::size_of::<T>(),
                align: std::mem::align_of::<T>(),
                fields: None,
                variants: None,
            }
        }
    }
}

#[doc(hidden)]
pub fn field_type_name<S, F: ?Sized>(_: fn(&S) -> &F) -> &'static str {
    std::any::type_name::<F>()
}

/// The [`Layout`] of a list of types, as this crate sees them (an expression).
///
/// `Type` gives name, size and alignment, or what its `#[derive(Layout)]` describes;
/// `Type { field, ... }` adds every field's name, type and offset, and must list every field (checked by the compiler). See [`layout!`](crate::layout).
#[macro_export]
macro_rules! layout_of {
    ($($ty:path $({ $($field:tt),* $(,)? })?),* $(,)?) => {
        $crate::Layout {
            types: ::std::vec![$(
                $crate::__layout_type!($ty $({ $($field),* })?)
            ),*],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __layout_type {
    // Without fields: the type's `#[derive(Layout)]` if it has one, else size and alignment.
    ($ty:path) => {{
        #[allow(unused_imports)]
        use $crate::__layout_probe::{ViaDerive as _, ViaSize as _};
        (&&$crate::__layout_probe::Probe::<$ty>(::std::marker::PhantomData)).describe()
    }};
    ($ty:path { $($field:tt),* }) => {
        $crate::TypeLayout {
            name: ::std::string::String::from(::std::any::type_name::<$ty>()),
            size: ::std::mem::size_of::<$ty>(),
            align: ::std::mem::align_of::<$ty>(),
            fields: $crate::__layout_fields!($ty { $($field),* }),
            variants: ::std::option::Option::None,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __layout_fields {
    ($ty:path { $($field:tt),* }) => {{
        // Never called: fails to compile when a field of the type is not listed.
        #[allow(dead_code, unused_variables)]
        fn exhaustive(value: &$ty) {
            let $ty { $($field: _),* } = value;
        }
        ::std::option::Option::Some(::std::vec![$(
            $crate::FieldLayout {
                name: ::std::string::String::from(stringify!($field)),
                ty: ::std::string::String::from($crate::__field_type_name::<$ty, _>(|v| &v.$field)),
                offset: ::std::mem::offset_of!($ty, $field),
            }
        ),*])
    }};
}

/// Exports the layout of the types a logic library shares with its host, for the layout guard.
///
/// Write it once in the logic crate, at item level, and the same list in the host's
/// [`hot_module!`](crate::hot_module) block:
///
/// ```ignore
/// // logic/src/lib.rs
/// dylib_dev_runtime::layout!(State { counter, players }, Player { name, score }, Mode);
///
/// // host/src/main.rs
/// dylib_dev_runtime::hot_module! {
///     mod logic("logic") {
///         layout!(State { counter, players }, Player { name, score }, Mode);
///         unsafe extern "Rust" { pub fn step(state: &mut State); }
///     }
/// }
/// ```
///
/// List every type whose values cross the boundary, also those reached through a field (the
/// `Player`s inside `State`'s `Vec`): a type that is not listed is not checked.
///
/// An enum listed without fields is compared by size and alignment unless it derives
/// [`Layout`](macro@crate::Layout) (`#[derive(dylib_dev_runtime::Layout)] enum Mode { .. }`): then its
/// variants, their order, discriminants and payload types are compared too. Types the logic
/// library owns and the host only holds (e.g. behind a raw pointer) are checked too: a new version
/// must list them with the layout the running version exported.
#[macro_export]
macro_rules! layout {
    ($($list:tt)*) => {
        /// The layout guard's fingerprint of this library's shared types (`dylib_dev_runtime::layout!`).
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "Rust" fn dylib_dev_layout() -> ::std::string::String {
            $crate::layout_of!($($list)*).encode()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    struct State {
        counter: u64,
        name: String,
    }

    #[allow(dead_code)]
    struct Grown {
        counter: u64,
        name: String,
        extra: u32,
    }

    #[allow(dead_code)]
    struct Pair(u8, u32);

    #[allow(dead_code)]
    enum Mode {
        A,
        B(u64),
    }

    #[test]
    fn fingerprints_round_trip_and_name_what_changed() {
        let old = crate::layout_of!(State { counter, name }, Pair { 0, 1 }, Mode);
        assert_eq!(old.types.len(), 3);
        let state = &old.types[0];
        assert!(state.name.ends_with("::State"), "{}", state.name);
        let fields = state.fields.as_ref().unwrap();
        assert_eq!(fields[1].name, "name");
        assert_eq!(fields[1].ty, "alloc::string::String");
        assert_eq!(old.types[1].fields.as_ref().unwrap()[0].ty, "u8");
        assert!(old.types[2].fields.is_none());
        assert_eq!(Layout::decode(&old.encode()), Some(old.clone()));
        assert_eq!(old.mismatch(&old), None);

        // The same type grown by a field, under the old name.
        let mut new = crate::layout_of!(Grown { counter, name, extra }, Pair { 0, 1 }, Mode);
        new.types[0].name = state.name.clone();
        let m = old.mismatch(&new).unwrap();
        assert_eq!(m.ty, state.name);
        assert!(
            m.changes.iter().any(|c| c == "field `extra: u32` added"),
            "{m}"
        );
        assert!(m.to_string().contains("changed (size"), "{m}");

        // Types the new side lists in addition are fine; one it dropped is not.
        // Without fields on one side: size and alignment only.
        let mut opaque = old.clone();
        opaque.types[0].fields = None;
        assert_eq!(opaque.mismatch(&old), None);
        assert_eq!(old.mismatch(&opaque), None);
        let m = opaque.mismatch(&new).unwrap();
        assert_eq!(m.changes, ["size 32 -> 40"]);

        let fewer = Layout {
            types: old.types[..2].to_vec(),
        };
        assert_eq!(fewer.mismatch(&old), None);
        let m = old.mismatch(&fewer).unwrap();
        assert!(m.ty.ends_with("::Mode"), "{m}");
        assert!(Layout::decode("X\t1").is_none());
    }

    mod v1 {
        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub enum Mode {
            Idle,
            Run(u32),
            Jump { height: f32 },
        }

        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub enum Flag {
            Off,
            On = 4,
        }

        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub struct Point(pub u8, pub u32);
    }

    mod v2 {
        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub enum Mode {
            Run(u32),
            Idle,
            Jump { height: u32 },
            Fall,
        }

        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub enum Flag {
            Off,
            On = 5,
        }
    }

    mod v3 {
        #[allow(dead_code)]
        #[derive(crate::Layout)]
        pub enum Flag {
            On = 4,
            Off,
        }
    }

    /// `v2::Mode` etc. under `v1`'s names, as a new build of the same crate would export them.
    fn renamed(mut l: Layout, from: &str, to: &str) -> Layout {
        for t in &mut l.types {
            t.name = t.name.replace(from, to);
        }
        l
    }

    #[test]
    fn derived_enums_round_trip_and_name_reordered_changed_and_added_variants() {
        let old = crate::layout_of!(v1::Mode, v1::Flag, v1::Point);
        let mode = &old.types[0];
        assert!(mode.name.ends_with("v1::Mode"), "{}", mode.name);
        assert!(mode.fields.is_none());
        let variants = mode.variants.as_ref().unwrap();
        let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Idle", "Run", "Jump"]);
        assert_eq!(variants[1].value, None, "payload enums have no `as` value");
        assert_eq!(variants[2].payload[0].name, "height");
        assert_eq!(variants[2].payload[0].ty, "f32");
        let flag = old.types[1].variants.as_ref().unwrap();
        assert_eq!(
            (flag[1].discriminant.as_str(), flag[1].value),
            ("4", Some(4))
        );
        assert_eq!(
            (flag[0].discriminant.as_str(), flag[0].value),
            ("", Some(0))
        );
        let point = old.types[2].fields.as_ref().unwrap();
        assert_eq!((point[1].name.as_str(), point[1].ty.as_str()), ("1", "u32"));
        assert_eq!(Layout::decode(&old.encode()), Some(old.clone()));
        assert_eq!(old.mismatch(&old), None);

        let new = renamed(
            crate::layout_of!(v2::Mode, v2::Flag, v1::Point),
            "v2::",
            "v1::",
        );
        assert_eq!(Layout::decode(&new.encode()), Some(new.clone()));
        let m = old.mismatch(&new).unwrap();
        assert!(m.ty.ends_with("v1::Mode"), "{m}");
        assert_eq!(
            m.changes,
            [
                "variant `Run` moved from 1 to 0",
                "variant `Idle` moved from 0 to 1",
                "variant `Jump` payload `height: f32` -> `height: u32`",
                "variant `Fall` added at 3",
            ]
        );
        let m = new.mismatch(&old).unwrap();
        assert!(
            m.changes.contains(&"variant `Fall` removed".to_string()),
            "{m}"
        );

        let flags = |l: &Layout| Layout {
            types: vec![l.types[1].clone()],
        };
        let m = flags(&old).mismatch(&flags(&new)).unwrap();
        assert_eq!(m.changes, ["variant `On` discriminant `4` -> `5`"]);
        // Same discriminants, other order: the values of the implicit one moved.
        let swapped = renamed(crate::layout_of!(v3::Flag), "v3::", "v1::");
        let m = flags(&old).mismatch(&swapped).unwrap();
        assert_eq!(
            m.changes,
            [
                "variant `On` moved from 1 to 0",
                "variant `Off` moved from 0 to 1",
                "variant `Off` discriminant 0 -> 5",
            ]
        );

        // The same size, so without the derive the reorder is not seen.
        let mut opaque = Layout {
            types: vec![old.types[0].clone()],
        };
        opaque.types[0].variants = None;
        assert_eq!(opaque.mismatch(&new), None);
        assert_eq!(
            Layout {
                types: vec![new.types[0].clone()]
            }
            .mismatch(&opaque),
            None
        );
        assert!(
            Layout::decode("T\tx\t1\t1\nV\tA\t\t").is_none(),
            "V before E"
        );
        assert!(Layout::decode("T\tx\t1\t1\nE\nV\tA\t\tnan").is_none());
        let empty = Layout::decode("T\tx\t0\t1\nE\n").unwrap();
        assert_eq!(empty.types[0].variants, Some(vec![]));
    }
}
